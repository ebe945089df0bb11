//! The parser never panics, whatever the input.

use proptest::prelude::*;
use xl_rs::config;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = config::load_bytes("fuzz.cfg", &bytes, &[]);
    }

    #[test]
    fn config_shaped_text_never_panics(
        text in r#"([a-z_]{1,8} ?(=|\+=) ?(\[|\]|,|"[^"\n]{0,8}"|'[^\n]{0,8}'|[0-9a-fx]{1,6}|\\|#| |\n|;){0,8}\n?){0,12}"#
    ) {
        let _ = config::load("fuzz.cfg", &text, &[]);
    }

    #[test]
    fn overrides_never_panic(lines in proptest::collection::vec(".{0,40}", 0..4)) {
        let _ = config::load("fuzz.cfg", "name='g'\nkernel='k'\n", &lines);
    }
}
