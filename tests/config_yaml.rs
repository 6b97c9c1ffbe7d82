//! Our YAML subset parser against expected value trees. The first table's expectations
//! are what a full YAML parser (PyYAML) gives for the same text; the second lists where
//! we deliberately differ (YAML 1.2 core typing, refusing what is outside the subset).

use cc_relay::config::yaml;

fn parsed(text: &str) -> String {
    match yaml::parse(text) {
        Ok(node) => node.to_json(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn snippets_parse_as_a_full_yaml_parser_parses_them() {
    let cases: &[(&str, &str)] = &[
        ("a: 1\nb: -2\nc: 3.5\nd: true\ne: ~\nf:\ng: \"x\\ty\\u00e9\\x41\"\nh: 'it''s'\n", r#"{"a":1,"b":-2,"c":3.5,"d":true,"e":null,"f":null,"g":"x\tyéA","h":"it's"}"#),
        ("- a\n- b:\n  - c\n  - d\n- - e\n  - f\n", r#"["a",{"b":["c","d"]},["e","f"]]"#),
        ("key:\n- a\n- b\nother: x\n", r#"{"key":["a","b"],"other":"x"}"#),
        ("text: |\n  line1\n  line2\n\n  line4\ntail: x\n", r#"{"text":"line1\nline2\n\nline4\n","tail":"x"}"#),
        ("text: |-\n  a\n  b\n\n\nnext: 1\n", r#"{"text":"a\nb","next":1}"#),
        ("text: |+\n  a\n  b\n\n\nnext: 1\n", r#"{"text":"a\nb\n\n\n","next":1}"#),
        ("text: >\n  folded\n  line\n\n  para\n    indented\n  back\nend: 1\n", r#"{"text":"folded line\npara\n  indented\nback\n","end":1}"#),
        ("text: >-\n  a\n  b\n", r#"{"text":"a b"}"#),
        ("- |\n  in seq\n- >2\n   two extra\n- x\n", r#"["in seq\n"," two extra\n","x"]"#),
        ("flow: [a, b, {c: d, e: [1, 2]}, \"q\", 'r']\nm: {a: 1, b: , c}\n", r#"{"flow":["a","b",{"c":"d","e":[1,2]},"q","r"],"m":{"a":1,"b":null,"c":null}}"#),
        ("url: http://example.com:8080/path\nk: a:b\nc: a # comment\nd: a#b\n", r#"{"url":"http://example.com:8080/path","k":"a:b","c":"a","d":"a#b"}"#),
        ("a:\n  b:\n    c: 1\n  d: 2\ne: 3\n", r#"{"a":{"b":{"c":1},"d":2},"e":3}"#),
        ("multi: this is\n  a multi line\n  plain scalar\n\n  with para\nx: 1\n", r#"{"multi":"this is a multi line plain scalar\nwith para","x":1}"#),
        ("dq: \"multi\n  line\n\n  with break \\\n  joined\"\n", r#"{"dq":"multi line\nwith break joined"}"#),
        ("sq: 'one\n   two'\n", r#"{"sq":"one two"}"#),
        ("empty: []\nemptym: {}\nnested: [[1,2],[3,[4]]]\n", r#"{"empty":[],"emptym":{},"nested":[[1,2],[3,[4]]]}"#),
        ("- name: \"x\"\n  # comment between\n  type: y\n\n- name: z\n", r#"[{"name":"x","type":"y"},{"name":"z"}]"#),
        ("n1: 0x1F\nn6: 12345678901234\nn7: +5\nn8: 1.\nn9: .5\nn10: -0.25\n", r#"{"n1":31,"n6":12345678901234,"n7":5,"n8":1.0,"n9":0.5,"n10":-0.25}"#),
        ("k: [a,\n  b, c,\n  d]\n", r#"{"k":["a","b","c","d"]}"#),
        ("list:\n  - a: 1\n    b: 2\n  - a: 3\n", r#"{"list":[{"a":1,"b":2},{"a":3}]}"#),
        ("x: \"a\\\"b\"\ny: \"\\\\\"\n", r#"{"x":"a\"b","y":"\\"}"#),
        ("- [a: b]\n", r#"[[{"a":"b"}]]"#),
        ("s: 'a # not comment'\nt: \"b # not\"\nu: c#d\n", r#"{"s":"a # not comment","t":"b # not","u":"c#d"}"#),
        ("foo: |\n  x\nbar: >\n y\n", r#"{"foo":"x\n","bar":"y\n"}"#),
        ("a: |2\n    two more\n  base\n", r#"{"a":"  two more\nbase\n"}"#),
        ("- - - deep\n    - x\n  - y\n- z\n", r#"[[["deep","x"],"y"],"z"]"#),
        ("seq:\n  - 1\n  -\n  - 3\n", r#"{"seq":[1,null,3]}"#),
        ("top: |\n\n  after blank\n", r#"{"top":"\nafter blank\n"}"#),
        ("--- |\n  doc scalar\n", r#""doc scalar\n""#),
        ("---\na: 1\n...\n", r#"{"a":1}"#),
        ("\"quoted key\": 1\n'single': 2\n\"json\": {\"k\":\"v\"}\n", r#"{"quoted key":1,"single":2,"json":{"k":"v"}}"#),
        ("models: [\"claude-sonnet-4-5-20250514\", \"GLM-4.7\"]\nheaders: {\"anthropic-beta\": \"x\", X-Trace: \"on\"}\n", r#"{"models":["claude-sonnet-4-5-20250514","GLM-4.7"],"headers":{"anthropic-beta":"x","X-Trace":"on"}}"#),
        ("key: \"${ZAI_API_KEY}\"\nplain: ${HOME}/x\n", r#"{"key":"${ZAI_API_KEY}","plain":"${HOME}/x"}"#),
    ];
    for (text, want) in cases {
        assert_eq!(parsed(text), *want, "\n--- yaml:\n{text}");
    }
}

#[test]
fn where_we_differ_from_yaml_1_1_parsers_on_purpose() {
    let cases: &[(&str, &str)] = &[
        // YAML 1.2 core schema typing (PyYAML implements 1.1)
        (
            "a: 0o17\nb: 1e3\nc: yes\nd: 017\ne: 1_000\n",
            r#"{"a":15,"b":1000.0,"c":"yes","d":17,"e":"1_000"}"#,
        ),
        ("a: .inf\nb: -.Inf\n", r#"{"a":"inf","b":"-inf"}"#),
        // a tab after the colon is separation space in YAML 1.2
        ("a:\tb\n", r#"{"a":"b"}"#),
        // duplicate keys are a mistake in a configuration, not "last one wins"
        (
            "a: 1\nb: 2\na: 3\n",
            "error: line 3: duplicate key 'a' (first at line 1)",
        ),
        ("{a: 1, a: 2}\n", "error: line 1: duplicate key 'a'"),
        // outside the subset: refused with the line
        (
            "a: &x 1\n",
            "error: line 1: anchors ('&name') are not supported",
        ),
        (
            "a: 1\nb: *x\n",
            "error: line 2: aliases ('*name') are not supported",
        ),
        (
            "a: !!int 1\n",
            "error: line 1: tags ('!tag') are not supported",
        ),
        (
            "a:\n  <<: {b: 1}\n",
            "error: line 2: merge keys ('<<') are not supported",
        ),
        (
            "? a\n: b\n",
            "error: line 1: complex mapping keys ('? ') are not supported",
        ),
        (
            "%YAML 1.2\n---\na: 1\n",
            "error: line 1: directives ('%YAML', '%TAG') are not supported",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "error: line 2: multiple documents are not supported",
        ),
        (
            "a: 1\n...\nb: 2\n",
            "error: line 3: multiple documents are not supported",
        ),
        (
            "a: 99999999999999999999\n",
            "error: line 1: integer 99999999999999999999 is out of range",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parsed(text), *want, "\n--- yaml:\n{text}");
    }
}

#[test]
fn malformed_yaml_reports_the_line() {
    let cases: &[(&str, &str)] = &[
        ("a: \"open\nb: 1\n", "error: line 1: unterminated double-quoted string"),
        ("a: 'open\n", "error: line 1: unterminated single-quoted string"),
        ("a: [1, 2\nb: 3\n", "error: line 1: unterminated flow collection ('[' or '{' without its closing bracket)"),
        ("a: b: c\n", "error: line 1: mapping values are not allowed here (a nested mapping must start on the next line)"),
        ("a: - b\n", "error: line 1: a list cannot start on the same line as its key; start it on the next line"),
        ("a:\n  b: 1\n c: 2\n", "error: line 3: unexpected indentation (a mapping entry must line up with the keys above it)"),
        ("a: 1\n  b: 2\n", "error: line 2: unexpected 'key:' inside a multi-line value (check the indentation)"),
        ("a: 1\n- b\n", "error: line 2: expected 'key: value', found a list item '- '"),
        ("a:b\nc: 1\n", "error: line 2: unexpected 'key:' inside a multi-line value (check the indentation or a missing space after ':' on line 1)"),
        ("a: \"x\" y\n", "error: line 1: unexpected text 'y' after the value"),
        ("a: \"\\q\"\n", "error: line 1: invalid escape '\\q' in a double-quoted string"),
        ("a:\n\tb: 1\n", "error: line 2: tab character used for indentation (use spaces)"),
        ("a: |0\n  x\n", "error: line 1: a block scalar indentation indicator must be 1-9"),
        ("a: [b, {c: d]\n", "error: line 1: expected ',' or '}' in a flow mapping"),
        ("a: {[b]: c}\n", "error: line 1: a flow collection cannot be a mapping key"),
        ("a: \u{1}\n", "error: line 1: control character U+0001 is not allowed"),
        ("a: @b\n", "error: line 1: '@' cannot start a value (quote the value)"),
        (": x\n", "error: line 1: empty mapping key"),
    ];
    for (text, want) in cases {
        assert_eq!(parsed(text), *want, "\n--- yaml:\n{text}");
    }
}

#[test]
fn not_utf8_is_an_error_with_a_line() {
    let err = yaml::parse_bytes(b"a: 1\nb: \xff\n")
        .err()
        .map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("line 2: the file is not valid UTF-8"));
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for text in [
        "[".repeat(100_000),
        "{a: ".repeat(100_000),
        "- ".repeat(100_000),
        (0..200)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect::<String>(),
    ] {
        let result = parsed(&text);
        assert!(result.contains("nesting deeper than 64 levels"), "{result}");
    }
}

#[test]
fn node_lines_point_at_values() {
    let root = yaml::parse(
        "# c\nproviders:\n  - name: a\n\n    keys:\n      - key: k\n        rpm_limit: 5\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let providers = root.get("providers").unwrap_or_else(|| panic!("providers"));
    assert_eq!(providers.line, 3);
    let cc_relay::config::value::Value::Seq(items) = &providers.value else {
        panic!("not a list")
    };
    let keys = items[0].get("keys").unwrap_or_else(|| panic!("keys"));
    assert_eq!(keys.line, 6);
    let cc_relay::config::value::Value::Seq(keys) = &keys.value else {
        panic!("not a list")
    };
    assert_eq!(keys[0].get("rpm_limit").map(|n| n.line), Some(7));
}

#[test]
fn windows_line_endings_and_a_byte_order_mark() {
    assert_eq!(
        parsed("a: 1\r\nb: |\r\n  x\r\n  y\r\nc: \"q\r\n  r\"\r\n"),
        r#"{"a":1,"b":"x\ny\n","c":"q r"}"#
    );
    assert_eq!(parsed("\u{feff}a: 1\n"), r#"{"a":1}"#);
}
