//! Every YAML and TOML example of the seed page (shared/seed/providers.zh-cn.md) and a
//! full Go cc-relay configuration: our parsers give the same tree as a full YAML / TOML
//! parser (the committed `.json` files), each example loads, and the YAML and TOML tab
//! of one example produce the same `config show` output (also committed, `.show.json`;
//! `CC_RELAY_BLESS=1` rewrites those after a deliberate change).

use std::path::{Path, PathBuf};

use cc_relay::config::value::{Entry, Node, Value};
use cc_relay::config::{load, show, toml_tree, yaml, Format, LoadOptions, Loaded};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn test_env(name: &str) -> Option<String> {
    let value = match name {
        "ANTHROPIC_API_KEY" => "sk-ant-test-0001",
        "ZAI_API_KEY" => "zai-test-0002",
        "AWS_ACCESS_KEY_ID" => "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY" => "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "AZURE_API_KEY" => "azure-test-0003",
        "GOOGLE_CLOUD_PROJECT" => "my-project",
        "PROXY_API_KEY" => "proxy-secret",
        "BEARER_SECRET" => "bearer-secret",
        _ => return None,
    };
    Some(value.to_string())
}

fn options() -> LoadOptions<'static> {
    LoadOptions {
        env: &test_env,
        check: Default::default(),
    }
}

fn parse(path: &Path) -> Node {
    let text = read(path);
    let parsed = match Format::from_path(path) {
        Some(Format::Yaml) => yaml::parse(&text).map_err(|e| e.to_string()),
        Some(Format::Toml) => toml_tree::parse(&text).map_err(|e| format!("{e:?}")),
        None => panic!("{}: not yaml or toml", path.display()),
    };
    parsed.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lines(diagnostics: &[cc_relay::config::Diagnostic]) -> Vec<String> {
    diagnostics.iter().map(|d| d.to_string()).collect()
}

/// A provider-level snippet (model_mapping / models) placed inside a provider.
fn as_provider(fragment: Node) -> Node {
    let mut entries = vec![
        Entry {
            key: "name".into(),
            key_line: 1,
            value: Node::new(Value::String("p".into()), 1),
        },
        Entry {
            key: "type".into(),
            key_line: 1,
            value: Node::new(Value::String("ollama".into()), 1),
        },
    ];
    let Value::Map(own) = fragment.value else {
        panic!("fragment is not a mapping")
    };
    entries.extend(own);
    let provider = Node::new(Value::Map(entries), 1);
    Node::new(
        Value::Map(vec![Entry {
            key: "providers".into(),
            key_line: 1,
            value: Node::new(Value::Seq(vec![provider]), 1),
        }]),
        1,
    )
}

fn load_fixture(path: &Path) -> Loaded {
    let format = Format::from_path(path).unwrap_or_else(|| panic!("format"));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    let result = if name.contains(".fragment.") {
        load::load_tree(as_provider(parse(path)), format, Some(name), options())
    } else {
        load::load_str_with(&read(path), format, Some(name), options())
    };
    result.unwrap_or_else(|errors| panic!("{name}: {:#?}", lines(&errors)))
}

fn check_golden(path: &Path, actual: &str) {
    if std::env::var_os("CC_RELAY_BLESS").is_some() {
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    assert_eq!(read(path), actual, "{}", path.display());
}

fn seed_examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("seed"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".yaml").map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn the_seed_page_has_thirteen_examples_with_both_tabs() {
    let names = seed_examples();
    assert_eq!(names.len(), 13, "{names:?}");
    for name in names {
        assert!(
            fixtures().join(format!("seed/{name}.toml")).is_file(),
            "{name}"
        );
    }
}

#[test]
fn our_parsers_agree_with_full_yaml_and_toml_parsers() {
    let mut checked = 0;
    let mut files: Vec<PathBuf> = vec![
        fixtures().join("cc-relay-full.yaml"),
        fixtures().join("cc-relay-full.toml"),
    ];
    for name in seed_examples() {
        files.push(fixtures().join(format!("seed/{name}.yaml")));
        files.push(fixtures().join(format!("seed/{name}.toml")));
    }
    for file in files {
        let expected = read(&PathBuf::from(format!("{}.json", file.display())));
        assert_eq!(
            parse(&file).to_json(),
            expected.trim_end(),
            "{}",
            file.display()
        );
        checked += 1;
    }
    assert_eq!(checked, 28);
}

#[test]
fn both_tabs_of_every_seed_example_show_the_same_config() {
    for name in seed_examples() {
        let dir = fixtures().join("seed");
        let from_yaml = show::to_json(&load_fixture(&dir.join(format!("{name}.yaml"))).config);
        let from_toml = show::to_json(&load_fixture(&dir.join(format!("{name}.toml"))).config);
        assert_eq!(from_yaml, from_toml, "{name}");
        check_golden(
            &dir.join(format!("{name}.show.json")),
            &format!("{from_yaml}\n"),
        );
    }
}

#[test]
fn seed_examples_warn_exactly_where_expected() {
    let expected: &[(&str, &[&str])] = &[
        (
            "01-anthropic.toml",
            &["providers[0].keys[0].models: TOML put this 'models' inside the [[providers.keys]] table above it; it is used as the provider's models (move it above the first [[providers.keys]] line to silence this) (01-anthropic.toml:13)"],
        ),
        ("01-anthropic.yaml", &[]),
        (
            "02-subscription.yaml",
            &["providers: no providers configured; using the built-in 'anthropic' provider (02-subscription.yaml)"],
        ),
        (
            "03-zai.toml",
            &["providers[0].model_mapping.models: TOML put this 'models' inside the [providers.model_mapping] table above it; it is used as the provider's models (move it above the [providers.model_mapping] line to silence this) (03-zai.toml:18)"],
        ),
        ("03-zai.yaml", &[]),
        ("07-bedrock.yaml", &[]),
        (
            "11-model-mapping.yaml",
            &["providers[0]: no keys: this provider needs an API key, requests to it will fail (11-model-mapping.yaml:2)"],
        ),
        (
            "11-model-mapping.toml",
            &["providers[0]: no keys: this provider needs an API key, requests to it will fail (11-model-mapping.toml:1)"],
        ),
        ("12-multi-provider.toml", &[]),
    ];
    for (file, want) in expected {
        let loaded = load_fixture(&fixtures().join("seed").join(file));
        assert_eq!(lines(&loaded.warnings), *want, "{file}");
    }
}

#[test]
fn a_full_go_cc_relay_config_loads_unchanged_in_both_formats() {
    let yaml = load_fixture(&fixtures().join("cc-relay-full.yaml"));
    let toml = load_fixture(&fixtures().join("cc-relay-full.toml"));
    assert_eq!(
        lines(&yaml.warnings),
        [
            "server.enable_http2: ignored: a Go cc-relay setting with no meaning in this cc-relay (cc-relay-full.yaml:8)",
            "cache.ristretto: ignored: a Go cc-relay setting with no meaning in this cc-relay (cc-relay-full.yaml:54)",
            "cache.olric: ignored: a Go cc-relay setting with no meaning in this cc-relay (cc-relay-full.yaml:58)",
            "grpc: ignored: a Go cc-relay setting with no meaning in this cc-relay (cc-relay-full.yaml:73)",
        ]
    );
    assert_eq!(
        lines(&toml.warnings).len(),
        6,
        "{:#?}",
        lines(&toml.warnings)
    );
    assert_eq!(show::to_json(&yaml.config), show::to_json(&toml.config));
    check_golden(
        &fixtures().join("cc-relay-full.show.json"),
        &format!("{}\n", show::to_json(&yaml.config)),
    );
    let shown = show::to_json(&yaml.config);
    for secret in [
        "proxy-secret",
        "bearer-secret",
        "sk-ant-test-0001",
        "zai-test-0002",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked");
    }
}
