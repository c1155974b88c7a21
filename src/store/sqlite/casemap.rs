//! IRC rfc1459 casemapping, used to make puppet names unique regardless of
//! case: IRC servers treat `Foo`/`foo` and `[a]`/`{a}` as the same nick, so
//! two QQ users must never be given names that differ only that way.

/// Folds `name` to its rfc1459 canonical form: ASCII letters to lowercase and
/// `[]\~` to `{}|^` (the Scandinavian "lowercase" of those characters).
/// Everything else, including non-ASCII, is left as is, as IRC servers do.
pub fn fold_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '[' => '{',
            ']' => '}',
            '\\' => '|',
            '~' => '^',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fold_name;

    #[test]
    fn ascii_letters_fold_to_lowercase() {
        assert_eq!(fold_name("FooBAR"), "foobar");
        assert_eq!(fold_name("foo"), fold_name("FOO"));
    }

    #[test]
    fn rfc1459_specials_fold_to_their_lowercase() {
        assert_eq!(fold_name("[a]"), "{a}");
        assert_eq!(fold_name(r"x\y~z"), "x|y^z");
        assert_eq!(fold_name("[A]"), fold_name("{a}"));
    }

    #[test]
    fn folding_is_idempotent_and_leaves_other_characters() {
        for name in ["{a}|^", "qq_10001", "小明", "Ünïcode-Ä", "a-b`c"] {
            assert_eq!(fold_name(&fold_name(name)), fold_name(name));
        }
        assert_eq!(fold_name("小明"), "小明");
        assert_eq!(fold_name("Ä"), "Ä");
        assert_eq!(fold_name("a-b_c`"), "a-b_c`");
    }
}
