//! Normalisers: how one field's raw value becomes the comparable form a duplicate rule keys on.
//!
//! Banks re-send the same tradeline with different formatting (`000-12.345 a`, `12345A`), with their own
//! prefixes (`DBA-12345`), with or without diacritics in names, and with dates in their own formats. A rule
//! lists, per key field, the normalisers applied in order; the result must be equal for two rows to be the
//! same tradeline. Per-bank settings (known prefixes, date formats) come from [`BankFormats`].

use std::collections::BTreeMap;

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Date formats tried for every bank (after the bank's own): ISO 8601 first, the form the default feed uses.
pub const DEFAULT_DATE_FORMATS: &[&str] = &["%Y-%m-%d", "%Y%m%d"];

/// One step of a field's normalisation. Names in config are the `snake_case` of the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normaliser {
    /// Removes every character that is not a letter or a digit (`12-34 5` → `12345`).
    Alnum,
    /// Upper-cases (`ab1` → `AB1`).
    Upper,
    /// Strips leading zeros (`00123` → `123`; all zeros → `0`).
    StripLeadingZeros,
    /// Strips the first of the furnishing bank's known prefixes the value starts with (case-insensitive).
    StripPrefixes,
    /// Names: Unicode NFKC, diacritics folded (`Martínez` → `MARTINEZ`), upper-cased, whitespace collapsed.
    Name,
    /// Dates: parsed in the bank's formats (then ISO and `YYYYMMDD`) and written as `YYYY-MM-DD`; a value that
    /// parses in none of them is kept trimmed, so it can still only equal the same text.
    Date,
}

impl Normaliser {
    /// Every normaliser with its config name.
    pub const ALL: &'static [(&'static str, Normaliser)] = &[
        ("alnum", Normaliser::Alnum),
        ("upper", Normaliser::Upper),
        ("strip_leading_zeros", Normaliser::StripLeadingZeros),
        ("strip_prefixes", Normaliser::StripPrefixes),
        ("name", Normaliser::Name),
        ("date", Normaliser::Date),
    ];

    /// The config name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == self)
            .map_or("?", |(name, _)| name)
    }

    /// Applies this step to `value` for a row furnished by a bank with `formats`.
    pub fn apply(self, value: &str, formats: &BankFormats) -> String {
        match self {
            Normaliser::Alnum => value.chars().filter(|c| c.is_alphanumeric()).collect(),
            Normaliser::Upper => value.chars().flat_map(char::to_uppercase).collect(),
            Normaliser::StripLeadingZeros => strip_leading_zeros(value),
            Normaliser::StripPrefixes => strip_prefix(value, &formats.prefixes),
            Normaliser::Name => fold_name(value),
            Normaliser::Date => parse_date(value, &formats.date_formats).map_or_else(
                || value.trim().to_owned(),
                |d| d.format("%Y-%m-%d").to_string(),
            ),
        }
    }
}

/// One bank's formatting habits: the prefixes it puts before account numbers and the date formats it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BankFormats {
    /// Known prefixes (`DBA-`, `ACC`), tried longest first.
    pub prefixes: Vec<String>,
    /// chrono `strftime` formats tried before [`DEFAULT_DATE_FORMATS`].
    pub date_formats: Vec<String>,
}

impl BankFormats {
    /// Sorts prefixes longest first, so `ACC-` wins over `ACC`.
    pub fn new(mut prefixes: Vec<String>, date_formats: Vec<String>) -> Self {
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.chars().count()));
        BankFormats {
            prefixes,
            date_formats,
        }
    }
}

/// Per-bank formats by furnisher (Salesforce Account id), with a fallback for banks not listed.
#[derive(Debug, Clone, Default)]
pub struct FormatBook {
    by_furnisher: BTreeMap<String, BankFormats>,
    fallback: BankFormats,
}

impl FormatBook {
    pub fn new(by_furnisher: BTreeMap<String, BankFormats>) -> Self {
        FormatBook {
            by_furnisher,
            fallback: BankFormats::default(),
        }
    }

    /// The formats of `furnisher` (none known: no prefixes, only the default date formats).
    pub fn get(&self, furnisher: &str) -> &BankFormats {
        self.by_furnisher.get(furnisher).unwrap_or(&self.fallback)
    }
}

/// Applies `steps` in order.
pub fn normalise(value: &str, steps: &[Normaliser], formats: &BankFormats) -> String {
    steps
        .iter()
        .fold(value.to_owned(), |v, step| step.apply(&v, formats))
}

/// Checks a chrono format string before it is used on data: it must format a date without error.
pub fn check_date_format(format: &str) -> Result<(), String> {
    use std::fmt::Write as _;
    let items: Vec<_> = chrono::format::StrftimeItems::new(format).collect();
    if items
        .iter()
        .any(|i| matches!(i, chrono::format::Item::Error))
    {
        return Err(format!("\"{format}\" is not a valid date format"));
    }
    let mut out = String::new();
    let date = NaiveDate::from_ymd_opt(2001, 2, 3).expect("valid literal date");
    write!(out, "{}", date.format(format))
        .map_err(|_| format!("\"{format}\" cannot format a date"))?;
    Ok(())
}

fn strip_leading_zeros(value: &str) -> String {
    let trimmed = value.trim_start_matches('0');
    if trimmed.is_empty() && !value.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn strip_prefix(value: &str, prefixes: &[String]) -> String {
    let trimmed = value.trim_start();
    for prefix in prefixes {
        let n = prefix.len();
        if trimmed.len() > n
            && trimmed.is_char_boundary(n)
            && trimmed[..n].eq_ignore_ascii_case(prefix)
        {
            return trimmed[n..].to_owned();
        }
    }
    trimmed.to_owned()
}

/// NFKC (compatibility forms: full-width letters, ligatures), then NFD to split off the diacritics, which are
/// dropped, then upper case with runs of whitespace collapsed to one space.
fn fold_name(value: &str) -> String {
    let folded: String = value
        .nfkc()
        .collect::<String>()
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_uppercase)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_date(value: &str, bank_formats: &[String]) -> Option<NaiveDate> {
    let value = value.trim();
    bank_formats
        .iter()
        .map(String::as_str)
        .chain(DEFAULT_DATE_FORMATS.iter().copied())
        .find_map(|f| NaiveDate::parse_from_str(value, f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank() -> BankFormats {
        BankFormats::new(
            vec!["ACC".into(), "ACC-".into(), "DBA/".into()],
            vec!["%d.%m.%Y".into(), "%m/%d/%Y".into()],
        )
    }

    #[test]
    fn alnum_upper_and_zeros() {
        let f = BankFormats::default();
        assert_eq!(Normaliser::Alnum.apply("12-34 5.a", &f), "12345a");
        assert_eq!(Normaliser::Upper.apply("ab1ß", &f), "AB1SS");
        assert_eq!(Normaliser::StripLeadingZeros.apply("00123", &f), "123");
        assert_eq!(Normaliser::StripLeadingZeros.apply("000", &f), "0");
        assert_eq!(Normaliser::StripLeadingZeros.apply("", &f), "");
        use Normaliser::*;
        assert_eq!(
            normalise("000-12.345 a", &[Alnum, Upper, StripLeadingZeros], &f),
            crate::records::normalise_identifier("000-12.345 a")
        );
    }

    #[test]
    fn prefixes_are_the_banks_own_and_longest_first() {
        let f = bank();
        assert_eq!(Normaliser::StripPrefixes.apply("ACC-00123", &f), "00123");
        assert_eq!(Normaliser::StripPrefixes.apply("acc00123", &f), "00123");
        assert_eq!(Normaliser::StripPrefixes.apply("DBA/9", &f), "9");
        // Not a known prefix, and a value that is only the prefix, stay as they are.
        assert_eq!(Normaliser::StripPrefixes.apply("XYZ-1", &f), "XYZ-1");
        assert_eq!(Normaliser::StripPrefixes.apply("ACC", &f), "ACC");
        assert_eq!(
            Normaliser::StripPrefixes.apply("ACC-1", &BankFormats::default()),
            "ACC-1"
        );
    }

    #[test]
    fn names_fold_compatibility_forms_and_diacritics() {
        let f = BankFormats::default();
        assert_eq!(
            Normaliser::Name.apply("  Martínez   Pérez ", &f),
            "MARTINEZ PEREZ"
        );
        assert_eq!(Normaliser::Name.apply("Ｍａｒｉａ", &f), "MARIA");
        assert_eq!(Normaliser::Name.apply("Ångström", &f), "ANGSTROM");
        // A decomposed accent (e + combining acute) folds like the precomposed one.
        assert_eq!(Normaliser::Name.apply("Jose\u{301}", &f), "JOSE");
        assert_eq!(Normaliser::Name.apply("José", &f), "JOSE");
    }

    #[test]
    fn dates_parse_in_the_banks_formats_first() {
        let f = bank();
        assert_eq!(Normaliser::Date.apply("31.01.1980", &f), "1980-01-31");
        assert_eq!(Normaliser::Date.apply("01/31/1980", &f), "1980-01-31");
        assert_eq!(Normaliser::Date.apply("1980-01-31", &f), "1980-01-31");
        assert_eq!(Normaliser::Date.apply("19800131", &f), "1980-01-31");
        assert_eq!(Normaliser::Date.apply(" not a date ", &f), "not a date");
        // Without the bank's formats, its dates are not understood.
        assert_eq!(
            Normaliser::Date.apply("31.01.1980", &BankFormats::default()),
            "31.01.1980"
        );
    }

    #[test]
    fn date_formats_are_checked() {
        assert!(check_date_format("%d.%m.%Y").is_ok());
        assert!(check_date_format("%Q").is_err());
    }

    #[test]
    fn every_normaliser_has_a_name() {
        for (name, n) in Normaliser::ALL {
            assert_eq!(n.name(), *name);
        }
    }
}
