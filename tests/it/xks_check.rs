//! `trent xks check` against a real external key store: AWS's XKS proxy over SoftHSMv2, both
//! started by the harness (`common::xks`). A healthy proxy and usable key pass; a wrong
//! credential, a key the HSM no longer has, a stopped proxy and a plain-HTTP endpoint without
//! `--allow-http` fail, each saying why.

use crate::common;

use common::xks::{XksProxy, ACCESS_KEY_ID, SECRET};
use serde_json::Value;

/// Run `trent xks check` with the proxy's endpoint and `secret`; (exit success, JSON report or
/// the stderr text).
fn check(proxy: &XksProxy, secret: &str, keys: &[&str], extra: &[&str]) -> (bool, Value, String) {
    let mut cmd = std::process::Command::new(common::trent_bin());
    cmd.args(["xks", "check", "--uri-endpoint", &proxy.uri_endpoint()])
        .args(["--access-key-id", ACCESS_KEY_ID])
        .args(extra)
        .env("TRENT_XKS_SECRET_ACCESS_KEY", secret);
    for key in keys {
        cmd.args(["--key-id", key]);
    }
    let out = cmd.output().expect("trent runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn xks_check_against_a_real_proxy_and_hsm() {
    let mut proxy = XksProxy::start(&["trent-key-1", "trent-key-2"]);
    let http = ["--allow-http"];

    let (ok, report, err) = check(&proxy, SECRET, &["trent-key-1", "trent-key-2"], &http);
    assert!(ok, "{report} {err}");
    assert_eq!(report["health"]["ok"], true);
    assert_eq!(
        report["health"]["ekmFleetDetails"][0]["healthStatus"],
        "ACTIVE"
    );
    for key in report["keys"].as_array().unwrap() {
        assert_eq!(key["keySpec"], "AES_256", "{key}");
        assert_eq!(key["usableByKms"], true, "{key}");
        assert_eq!(key["roundTrip"], true, "{key}");
    }
    assert!(
        !report.to_string().contains(SECRET),
        "the secret is never printed"
    );

    // A wrong credential: the proxy refuses the signature.
    let (ok, report, _) = check(&proxy, &SECRET.replace('x', "y"), &[], &http);
    assert!(!ok);
    let error = report["health"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refused the authentication credential"),
        "{report}"
    );

    // A key removed from the HSM, and one it never had.
    proxy.delete_key("trent-key-2");
    let (ok, report, _) = check(
        &proxy,
        SECRET,
        &["trent-key-1", "trent-key-2", "absent"],
        &http,
    );
    assert!(!ok);
    assert_eq!(report["keys"][0]["ok"], true, "{report}");
    for i in [1, 2] {
        let error = report["keys"][i]["error"].as_str().unwrap_or_default();
        assert!(error.contains("does not exist"), "{report}");
    }

    // Plain HTTP needs the test flag.
    let (ok, _, err) = check(&proxy, SECRET, &[], &[]);
    assert!(!ok);
    assert!(err.contains("https://"), "{err}");

    // A stopped proxy does not answer (within the 250 ms budget).
    proxy.stop();
    let (ok, report, _) = check(&proxy, SECRET, &[], &http);
    assert!(!ok);
    let error = report["health"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("did not answer"), "{report}");
    proxy.restart();
    let (ok, report, _) = check(&proxy, SECRET, &["trent-key-1"], &http);
    assert!(ok, "{report}");
}
