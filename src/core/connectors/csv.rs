//! A small RFC 4180 CSV reader (quoted fields, doubled quotes, CRLF or LF), enough for
//! analytics exports; it reports the line where a record starts.

/// (line, fields) of each record, or (line, message).
pub type CsvRecords = Result<Vec<(usize, Vec<String>)>, (usize, String)>;

pub fn parse(text: &str) -> CsvRecords {
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => in_quotes = false,
            (true, '\n') => {
                line += 1;
                field.push('\n');
            }
            (false, '"') if field.is_empty() => in_quotes = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                out.push((record_line, std::mem::take(&mut fields)));
                line += 1;
                record_line = line;
            }
            (_, c) => field.push(c),
        }
    }
    if in_quotes {
        return Err((record_line, "a quoted field is not closed".into()));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        out.push((record_line, fields));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_newlines_and_crlf() {
        let rows = super::parse("a,b\r\n\"x, \"\"y\"\"\",\"two\nlines\"\nlast,\n").unwrap();
        assert_eq!(rows[0], (1, vec!["a".to_string(), "b".to_string()]));
        assert_eq!(
            rows[1],
            (2, vec!["x, \"y\"".to_string(), "two\nlines".to_string()])
        );
        assert_eq!(rows[2], (4, vec!["last".to_string(), String::new()]));
        assert_eq!(super::parse("\"open").unwrap_err().0, 1);
    }
}
