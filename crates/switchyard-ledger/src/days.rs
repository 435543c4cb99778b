//! Turns a day number (days since 1970-01-01, UTC) into `YYYY-MM-DD`, so "group by day" can be
//! the same integer division in SQLite and PostgreSQL and need no date library.

/// Formats day `days` after the unix epoch as an ISO date.
pub(crate) fn iso_date(days: i64) -> String {
    // Civil-from-days over 400-year eras of 146097 days, with years starting on March 1st so
    // that the leap day falls at the end of the year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::iso_date;

    #[test]
    fn known_dates() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(59), "1970-03-01");
        assert_eq!(iso_date(11_016), "2000-02-29");
        assert_eq!(iso_date(19_782), "2024-02-29");
        assert_eq!(iso_date(20_454), "2026-01-01");
        assert_eq!(iso_date(-1), "1969-12-31");
    }
}
