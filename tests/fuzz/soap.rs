//! The Outbound Messaging listener's envelope parser.

use creditlink::inbound::parse_envelope;
use creditlink::intake::XmlLimits;
use proptest::prelude::*;

use crate::support::{config, corpus, mutated};

#[test]
fn corpus_envelopes_parse_without_panicking() {
    let seeds = corpus("soap");
    for seed in &seeds {
        let _ = parse_envelope(seed, &XmlLimits::default());
    }
    // The first seed is a real envelope: the harness mutates something that parses.
    assert!(parse_envelope(&seeds[0], &XmlLimits::default()).is_ok());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_envelopes_never_panic(bytes in mutated(corpus("soap"))) {
        let _ = parse_envelope(&bytes, &XmlLimits::default());
    }
}
