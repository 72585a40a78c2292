//! A seeded generator of labelled tradeline rows, to measure duplicate rules against ground truth.
//!
//! Every row carries the id of the tradeline it really is ([`LabelledRow::tradeline`]). Rows of one tradeline
//! come formatted the ways banks really send them: account numbers with and without leading zeros, with
//! dashes, spaces, lower case, the bank's own prefix; national ids formatted several ways; names with and
//! without diacritics; dates in the bank's format; the same tradeline in several uploads; account-number
//! changes (a row with `previous_account_number`). Other tradelines are near-misses that must *not* merge: the
//! same account number with another product type, an account number one digit apart, the same person with a
//! second account, another furnisher with the same account number. A small share of duplicates carry a typo
//! the bank made (two digits swapped): true duplicates no formatting rule can find, so recall is honestly
//! below 100 %.
//!
//! The same seed always gives the same rows (`StdRng` seeded from a `u64`), so a measurement can be repeated.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::normalise::{BankFormats, FormatBook, Normaliser};
use super::rules::{FURNISHER, KeyField, Rule, RuleSet};

/// The synthetic banks: furnisher id, account-number prefix (if the bank uses one), date format.
pub const BANKS: &[(&str, Option<&str>, &str)] = &[
    ("0015Y00000SYNTHAQA5", None, "%Y-%m-%d"),
    ("0015Y00000SYNTHBQA5", Some("ACC-"), "%d.%m.%Y"),
    ("0015Y00000SYNTHCQA5", Some("CB"), "%m/%d/%Y"),
];

const PRODUCTS: &[&str] = &["installment", "revolving", "mortgage", "open", "other"];
const FIRST: &[(&str, &str)] = &[
    ("María", "Maria"),
    ("José", "Jose"),
    ("Zoë", "Zoe"),
    ("Anna", "Anna"),
    ("Renée", "Renee"),
    ("Jürgen", "Jurgen"),
    ("Carlos", "Carlos"),
    ("Inés", "Ines"),
];
const LAST: &[(&str, &str)] = &[
    ("Martínez", "Martinez"),
    ("Müller", "Muller"),
    ("Ångström", "Angstrom"),
    ("Rojas", "Rojas"),
    ("Núñez", "Nunez"),
    ("de Windt", "de Windt"),
    ("Çelik", "Celik"),
    ("Smith", "Smith"),
];

/// One generated row and what it really is.
#[derive(Debug, Clone)]
pub struct LabelledRow {
    /// The furnishing bank (Salesforce Account id).
    pub furnisher: String,
    /// The row, keyed by the default feed's column names.
    pub fields: BTreeMap<String, String>,
    /// Ground truth: rows with the same id are the same tradeline.
    pub tradeline: u64,
}

/// The formats of the synthetic banks: their prefixes and date formats.
pub fn formats() -> FormatBook {
    FormatBook::new(
        BANKS
            .iter()
            .map(|(id, prefix, date)| {
                let prefixes = prefix.map(|p| vec![p.to_owned()]).unwrap_or_default();
                (
                    (*id).to_owned(),
                    BankFormats::new(prefixes, vec![(*date).to_owned()]),
                )
            })
            .collect(),
    )
}

/// The default rule with the banks' prefixes stripped from account numbers: what a bureau with these banks
/// configures (`[[records.bank_formats]] account_prefixes` + a `default` rule using `strip_prefixes`).
pub fn rules_with_prefixes() -> RuleSet {
    use Normaliser::*;
    let mut rule = Rule::default_rule();
    rule.fields = vec![
        KeyField::new(FURNISHER, &[]),
        KeyField::new("product_type", &[Alnum, Upper]),
        KeyField::new(
            "account_number",
            &[StripPrefixes, Alnum, Upper, StripLeadingZeros],
        ),
    ];
    RuleSet::new(vec![rule], formats())
}

struct Person {
    national_id: u64,
    first: usize,
    last: usize,
    born: chrono::NaiveDate,
}

struct Tradeline {
    id: u64,
    bank: usize,
    product: usize,
    account: String,
    person: usize,
    opened: chrono::NaiveDate,
}

/// `rows` labelled rows from `seed`.
pub fn generate(seed: u64, rows: usize) -> Vec<LabelledRow> {
    let mut g = Generator {
        rng: StdRng::seed_from_u64(seed),
        people: Vec::new(),
        out: Vec::with_capacity(rows + 4),
        next_id: 0,
    };
    while g.out.len() < rows {
        g.tradeline_with_near_misses();
    }
    g.out.truncate(rows);
    // Interleave, as uploads and existing records do: the order must not matter to the rules.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    for i in (1..g.out.len()).rev() {
        let j = rng.random_range(0..=i);
        g.out.swap(i, j);
    }
    g.out
}

struct Generator {
    rng: StdRng,
    people: Vec<Person>,
    out: Vec<LabelledRow>,
    next_id: u64,
}

impl Generator {
    fn tradeline_with_near_misses(&mut self) {
        let person = self.person();
        let base = self.tradeline(person, None, None, None);
        self.appearances(&base);
        let roll = self.rng.random_range(0..100);
        let near_miss = match roll {
            // Same account number, another product type.
            0..=7 => {
                let other =
                    (base.product + self.rng.random_range(1..PRODUCTS.len())) % PRODUCTS.len();
                Some(self.tradeline(
                    person,
                    Some(base.bank),
                    Some(other),
                    Some(base.account.clone()),
                ))
            }
            // Account number one digit apart.
            8..=15 => {
                let account = one_digit_apart(&base.account, &mut self.rng);
                Some(self.tradeline(person, Some(base.bank), Some(base.product), Some(account)))
            }
            // Same person, a second account of the same kind.
            16..=23 => Some(self.tradeline(person, Some(base.bank), Some(base.product), None)),
            // Another furnisher, the same account number and product.
            24..=31 => {
                let other =
                    (base.bank + 1 + self.rng.random_range(0..BANKS.len() - 1)) % BANKS.len();
                Some(self.tradeline(
                    person,
                    Some(other),
                    Some(base.product),
                    Some(base.account.clone()),
                ))
            }
            _ => None,
        };
        if let Some(t) = near_miss {
            self.appearances(&t);
        }
    }

    fn person(&mut self) -> usize {
        // Two in ten tradelines belong to someone who already has one.
        if !self.people.is_empty() && self.rng.random_bool(0.2) {
            return self.rng.random_range(0..self.people.len());
        }
        let born = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).expect("literal")
            + chrono::Days::new(self.rng.random_range(0..18_000));
        self.people.push(Person {
            national_id: self.rng.random_range(1_000_000_000..10_000_000_000),
            first: self.rng.random_range(0..FIRST.len()),
            last: self.rng.random_range(0..LAST.len()),
            born,
        });
        self.people.len() - 1
    }

    /// A new tradeline; `None` parts are drawn.
    fn tradeline(
        &mut self,
        person: usize,
        bank: Option<usize>,
        product: Option<usize>,
        account: Option<String>,
    ) -> Tradeline {
        let bank = bank.unwrap_or_else(|| self.rng.random_range(0..BANKS.len()));
        let product = product.unwrap_or_else(|| self.rng.random_range(0..PRODUCTS.len()));
        let account = account.unwrap_or_else(|| self.fresh_account());
        self.next_id += 1;
        Tradeline {
            id: self.next_id,
            bank,
            product,
            account,
            person,
            opened: chrono::NaiveDate::from_ymd_opt(2005, 1, 1).expect("literal")
                + chrono::Days::new(self.rng.random_range(0..7_000)),
        }
    }

    /// A random account number: 8 to 12 digits, one in five with a check letter.
    fn fresh_account(&mut self) -> String {
        let digits = self.rng.random_range(8..=12);
        let mut s: String = (0..digits)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10u8)))
            .collect();
        if self.rng.random_bool(0.2) {
            s.push(char::from(b'A' + self.rng.random_range(0..26u8)));
        }
        s
    }

    /// One to four rows of the tradeline, variously formatted; sometimes an account-number change.
    fn appearances(&mut self, t: &Tradeline) {
        let n = self.rng.random_range(1..=4);
        let mut account = t.account.clone();
        for i in 0..n {
            let mut previous = None;
            if i > 0 && self.rng.random_bool(0.03) {
                previous = Some(account.clone());
                account = self.fresh_account();
            }
            let mut shown = self.format_account(&account, t.bank);
            if i > 0 && self.rng.random_bool(0.003) {
                shown = swap_two_digits(&shown, &mut self.rng);
            }
            let row = self.row(t, &shown, previous.as_deref());
            self.out.push(LabelledRow {
                furnisher: BANKS[t.bank].0.to_owned(),
                fields: row,
                tradeline: t.id,
            });
        }
    }

    fn format_account(&mut self, account: &str, bank: usize) -> String {
        let mut s = match self.rng.random_range(0..5) {
            0 => account.to_owned(),
            1 => format!("{}{account}", "0".repeat(self.rng.random_range(1..4))),
            2 => group(account, '-'),
            3 => group(account, ' '),
            _ => account.to_lowercase(),
        };
        if let Some(prefix) = BANKS[bank].1
            && self.rng.random_bool(0.5)
        {
            s = format!("{prefix}{s}");
        }
        s
    }

    fn row(
        &mut self,
        t: &Tradeline,
        account: &str,
        previous: Option<&str>,
    ) -> BTreeMap<String, String> {
        let p = &self.people[t.person];
        let date_format = BANKS[t.bank].2;
        let id = p.national_id.to_string();
        let national_id = match self.rng.random_range(0..3) {
            0 => format!("CW-{id}"),
            1 => format!("cw{id}"),
            _ => format!("CW {} {}", &id[..4], &id[4..]),
        };
        let plain = self.rng.random_bool(0.5);
        let pick = |pair: (&str, &str)| if plain { pair.1 } else { pair.0 }.to_owned();
        let product = PRODUCTS[t.product];
        let product = if self.rng.random_bool(0.3) {
            product.to_uppercase()
        } else {
            product.to_owned()
        };
        let mut row = BTreeMap::from([
            ("account_number".to_owned(), account.to_owned()),
            ("product_type".to_owned(), product),
            ("national_id".to_owned(), national_id),
            ("first_name".to_owned(), pick(FIRST[p.first])),
            ("last_name".to_owned(), pick(LAST[p.last])),
            (
                "date_of_birth".to_owned(),
                p.born.format(date_format).to_string(),
            ),
            (
                "date_opened".to_owned(),
                t.opened.format(date_format).to_string(),
            ),
            ("subject_type".to_owned(), "person".to_owned()),
            ("status".to_owned(), "active".to_owned()),
            ("currency".to_owned(), "ANG".to_owned()),
            (
                "balance".to_owned(),
                self.rng.random_range(0..500_000).to_string(),
            ),
        ]);
        if let Some(previous) = previous {
            row.insert("previous_account_number".to_owned(), previous.to_owned());
        }
        row
    }
}

fn group(account: &str, sep: char) -> String {
    let mut out = String::new();
    for (i, c) in account.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

fn one_digit_apart(account: &str, rng: &mut StdRng) -> String {
    let digits: Vec<usize> = account
        .char_indices()
        .filter(|(_, c)| c.is_ascii_digit())
        .map(|(i, _)| i)
        .collect();
    let at = digits[rng.random_range(0..digits.len())];
    let old = account.as_bytes()[at] - b'0';
    let new = (old + rng.random_range(1..10u8)) % 10;
    let mut bytes = account.as_bytes().to_vec();
    bytes[at] = b'0' + new;
    String::from_utf8(bytes).expect("ascii digits")
}

/// A bank's typo: two adjacent different digits swapped (if there are any).
fn swap_two_digits(shown: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = shown.chars().collect();
    let candidates: Vec<usize> = (0..chars.len().saturating_sub(1))
        .filter(|&i| {
            chars[i].is_ascii_digit() && chars[i + 1].is_ascii_digit() && chars[i] != chars[i + 1]
        })
        .collect();
    if candidates.is_empty() {
        return shown.to_owned();
    }
    let i = candidates[rng.random_range(0..candidates.len())];
    chars.swap(i, i + 1);
    chars.into_iter().collect()
}
