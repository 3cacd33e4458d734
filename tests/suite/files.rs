//! write_files, read_files and list_files: lossless, and confined to the
//! session's working directory.

use base64::Engine;
use serde_json::json;

use super::harness::*;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn sha256(b: &[u8]) -> String {
    code_interpreter_mcp::sha256_hex(b)
}

async fn a_mebibyte_of_random_bytes_round_trips_exactly(b: Backend) {
    let s = Server::on(b).await;
    let mut data = vec![0u8; 1024 * 1024];
    getrandom::fill(&mut data).unwrap();
    let r = s
        .ok(
            "write_files",
            json!({"files": [{"path": "bin/random.dat", "base64": b64(&data)}]}),
        )
        .await;
    assert_eq!(r["files"][0]["bytes"], data.len());
    assert_eq!(r["files"][0]["sha256"], sha256(&data));

    // The code in the session sees the same bytes.
    let r = s
        .py("import hashlib\nhashlib.sha256(open('bin/random.dat','rb').read()).hexdigest()")
        .await;
    assert_eq!(value(&r), format!("'{}'", sha256(&data)));

    let r = s
        .ok("read_files", json!({"paths": ["bin/random.dat"]}))
        .await;
    let f = &r["files"][0];
    assert_eq!(f["sha256"], sha256(&data));
    let back = base64::engine::general_purpose::STANDARD
        .decode(f["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(back, data);
}

async fn text_files_round_trip_and_list(b: Backend) {
    let s = Server::on(b).await;
    let text = "héllo\nwörld\n";
    s.ok(
        "write_files",
        json!({"files": [{"path": "a/b.txt", "text": text}, {"path": "c.txt", "text": ""}]}),
    )
    .await;
    let r = s
        .ok(
            "read_files",
            json!({"paths": ["a/b.txt", "c.txt", "missing.txt"]}),
        )
        .await;
    assert_eq!(r["files"][0]["text"], text);
    assert_eq!(r["files"][0]["bytes"], text.len());
    assert_eq!(r["files"][1]["text"], "");
    assert!(
        r["files"][2]["error"]
            .as_str()
            .unwrap()
            .contains("no such file"),
        "{r}"
    );

    let r = s.ok("list_files", json!({"recursive": true})).await;
    let paths: Vec<&str> = r["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, vec!["a", "a/b.txt", "c.txt"]);
    assert_eq!(r["entries"][0]["type"], "dir");
}

async fn image_files_are_returned_as_images(b: Backend) {
    let s = Server::on(b).await;
    // A 1x1 PNG.
    let png = base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
        .unwrap();
    s.ok(
        "write_files",
        json!({"files": [{"path": "dot.png", "base64": b64(&png)}]}),
    )
    .await;
    let r = s.call("read_files", json!({"paths": ["dot.png"]})).await;
    let imgs = images(&r);
    assert_eq!(imgs, vec![("image/png".to_string(), png.clone())]);
    let v = r.structured_content.unwrap();
    assert_eq!(v["files"][0]["image"], "image/png");
    assert_eq!(v["files"][0]["sha256"], sha256(&png));
}

#[tokio::test]
async fn paths_that_escape_are_refused_and_change_nothing() {
    let s = Server::start().await;
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();

    for bad in ["../x.txt", "/tmp/x.txt", "a/../../x.txt"] {
        let msg = s
            .err(
                "write_files",
                json!({"files": [{"path": "ok.txt", "text": "1"}, {"path": bad, "text": "2"}]}),
            )
            .await;
        assert!(msg.contains("Nothing was changed"), "{msg}");
    }
    // The good file of a refused batch was not written either.
    let r = s.ok("read_files", json!({"paths": ["ok.txt"]})).await;
    assert!(r["files"][0]["error"].is_string(), "{r}");

    // Symlinks made by code in the session lead nowhere.
    s.ok(
        "execute_command",
        json!({"command": format!("ln -s {} out && ln -s {} secret_link", outside.path().display(), secret.display())}),
    )
    .await;
    let r = s
        .ok(
            "read_files",
            json!({"paths": ["out/secret.txt", "secret_link", "/etc/passwd", "../../etc/passwd"]}),
        )
        .await;
    for f in r["files"].as_array().unwrap() {
        assert!(f.get("text").is_none(), "read through an escape: {f}");
        assert!(f["error"].is_string(), "{f}");
    }
    assert!(
        r["files"][0]["error"].as_str().unwrap().contains("outside"),
        "{r}"
    );

    let msg = s
        .err(
            "write_files",
            json!({"files": [{"path": "out/planted.txt", "text": "x"}]}),
        )
        .await;
    assert!(msg.contains("outside"), "{msg}");
    assert!(!outside.path().join("planted.txt").exists());
    // Writing to the symlink's own name replaces the link, not its target.
    s.ok(
        "write_files",
        json!({"files": [{"path": "secret_link", "text": "replaced"}]}),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");

    let msg = s.err("list_files", json!({"path": ".."})).await;
    assert!(msg.contains(".."), "{msg}");
    let msg = s.err("list_files", json!({"path": "out"})).await;
    assert!(msg.contains("outside"), "{msg}");
}

async fn bad_arguments_get_clear_errors(b: Backend) {
    let s = Server::on(b).await;
    let msg = s
        .err(
            "write_files",
            json!({"files": [{"path": "x", "text": "a", "base64": "YQ=="}]}),
        )
        .await;
    assert!(msg.contains("either text or base64"), "{msg}");
    let msg = s
        .err(
            "write_files",
            json!({"files": [{"path": "x", "base64": "***"}]}),
        )
        .await;
    assert!(msg.contains("base64 is not valid"), "{msg}");
    let msg = s
        .err("execute_code", json!({"code": "1", "timeout": 5}))
        .await;
    assert!(msg.contains("unknown field `timeout`"), "{msg}");
    let msg = s
        .err("execute_code", json!({"code": "1", "language": "cobol"}))
        .await;
    assert!(msg.contains("cobol"), "{msg}");
    let msg = s
        .err("execute_code", json!({"code": "1", "timeout_seconds": 0}))
        .await;
    assert!(msg.contains("at least 1"), "{msg}");
}

async fn one_call_returns_at_most_16_mib_and_says_which_files_to_read_again(b: Backend) {
    let s = Server::on(b).await;
    let seven_mib = "x".repeat(7 << 20);
    for name in ["a.txt", "b.txt", "c.txt"] {
        s.ok(
            "write_files",
            json!({"files": [{"path": name, "text": seven_mib}]}),
        )
        .await;
    }
    s.ok(
        "write_files",
        json!({"files": [{"path": "small.txt", "text": "tiny"}]}),
    )
    .await;
    let r = s
        .ok(
            "read_files",
            json!({"paths": ["a.txt", "b.txt", "c.txt", "small.txt"]}),
        )
        .await;
    let files = r["files"].as_array().unwrap();
    assert_eq!(files[0]["bytes"], 7 << 20);
    assert_eq!(files[1]["bytes"], 7 << 20);
    let refused = files[2]["error"].as_str().unwrap_or_default();
    assert!(
        refused.contains("16 MiB") && refused.contains("another call"),
        "the third file would pass 16 MiB: {}",
        files[2]
    );
    assert!(files[2].get("text").is_none());
    assert_eq!(
        files[3]["text"], "tiny",
        "a file that still fits is returned"
    );
    let again = s.ok("read_files", json!({"paths": ["c.txt"]})).await;
    assert_eq!(again["files"][0]["bytes"], 7 << 20);
}

crate::on_both_backends!(
    one_call_returns_at_most_16_mib_and_says_which_files_to_read_again,
    a_mebibyte_of_random_bytes_round_trips_exactly,
    text_files_round_trip_and_list,
    image_files_are_returned_as_images,
    bad_arguments_get_clear_errors,
);
