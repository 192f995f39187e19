//! The `Date` header, cached: formatted by hand (IMF-fixdate, RFC 9110
//! section 5.6.7, as `Sun, 06 Nov 1994 08:49:37 GMT`) from the system
//! clock, once per second by the listener's timer, and copied into every
//! response from there.

use std::time::{SystemTime, UNIX_EPOCH};

/// The length of an IMF-fixdate.
pub(crate) const DATE_LEN: usize = 29;

/// The current date, formatted, and the second it was formatted for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachedDate {
    bytes: [u8; DATE_LEN],
    secs: u64,
}

impl CachedDate {
    /// The date now.
    pub(crate) fn now() -> CachedDate {
        let secs = unix_secs();
        CachedDate {
            bytes: imf_fixdate(secs),
            secs,
        }
    }

    /// Reads the clock and formats the date again if the second changed.
    pub(crate) fn refresh(&mut self) {
        let secs = unix_secs();
        if secs != self.secs {
            self.secs = secs;
            self.bytes = imf_fixdate(secs);
        }
    }

    /// The formatted date.
    pub(crate) fn bytes(&self) -> &[u8; DATE_LEN] {
        &self.bytes
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `secs` since the Unix epoch as an IMF-fixdate.
pub(crate) fn imf_fixdate(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    // Years past 9999 are not dates a clock of this century gives.
    let year = year.min(9999);
    two(&mut out[12..14], year / 100);
    two(&mut out[14..16], year % 100);
    two(&mut out[17..19], in_day / 3600);
    two(&mut out[20..22], in_day / 60 % 60);
    two(&mut out[23..25], in_day % 60);
    out
}

fn two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// The (year, month 1-12, day 1-31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
