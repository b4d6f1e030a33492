//! `application/x-www-form-urlencoded`, the body Stripe's API takes. Written out here rather
//! than through reqwest's optional `form` feature: turning that on rebuilds reqwest and every
//! crate above it for a dozen lines of encoding.

/// Encodes `fields` in order, as the WHATWG URL standard's serializer does: alphanumerics and
/// `*-._` as they are, space as `+`, every other byte of the UTF-8 as `%XX`.
pub fn encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_encoded(&mut out, key);
        out.push('=');
        push_encoded(&mut out, value);
    }
    out
}

fn push_encoded(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn brackets_reserved_characters_and_utf8_are_escaped() {
        assert_eq!(
            encode(&[
                ("metadata[plan]", "pro & team"),
                ("email", "a+b@example.com"),
                ("name", "Plano Básico"),
            ]),
            "metadata%5Bplan%5D=pro+%26+team&email=a%2Bb%40example.com&name=Plano+B%C3%A1sico"
        );
    }
}
