//! Locations as the state records them: without credentials.

/// A repository location with user names, passwords and query strings removed
/// (`s3://KEY:SECRET@host/bucket?sig=…` → `s3://host/bucket`); a path stays as it is.
pub fn redact_location(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_string();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::redact_location;

    #[rstest::rstest]
    #[case("/srv/backup", "/srv/backup")]
    #[case("s3://bucket/prefix", "s3://bucket/prefix")]
    #[case("s3://AKIA:secret@bucket/p?x-amz-signature=abc", "s3://bucket/p")]
    #[case("azblob://acct:key@container", "azblob://container")]
    #[case("https://h/p#frag", "https://h/p")]
    fn redacts(#[case] input: &str, #[case] want: &str) {
        assert_eq!(redact_location(input), want);
    }
}
