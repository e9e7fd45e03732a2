//! Wall-clock helpers. Times are always passed in (µs since the Unix epoch); nothing here reads the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch; times before the epoch count as 0.
pub fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros()
        .try_into()
        .unwrap_or(u64::MAX)
}

/// A UTC calendar time split into its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

/// Splits µs since the epoch into UTC fields (proleptic Gregorian calendar).
pub fn civil(us: u64) -> Civil {
    let secs = us / 1_000_000;
    let micros = (us % 1_000_000) as u32;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days-to-date after Howard Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        micros,
    }
}

/// `YYYY-MM-DDThh:mm:ss.uuuuuuZ`, for metadata and sidecars that people read.
pub fn iso8601(us: u64) -> String {
    let c = civil(us);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T12:34:56.789Z (leap day)
        assert_eq!(
            iso8601(1_709_210_096_789_000),
            "2024-02-29T12:34:56.789000Z"
        );
        assert_eq!(iso8601(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
    }
}
