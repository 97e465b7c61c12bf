//! The key provider the servers start on: the master key file, or (with
//! `PINVAULT_TEST_KEY_PROVIDER=pkcs11`) a PKCS#11 token.

use super::data_dir::DataDir;

/// With `PINVAULT_TEST_KEY_PROVIDER=pkcs11` (scripts/test sets it, with a
/// SoftHSM2 token, `PINVAULT_TEST_PKCS11_MODULE`, `PINVAULT_TEST_PKCS11_TOKEN`
/// and `PINVAULT_PKCS11_PIN`), every server's data directory is first put on
/// the token with `pinvault keys init --provider pkcs11`: no key file.
pub fn pkcs11_provider() -> bool {
    std::env::var("PINVAULT_TEST_KEY_PROVIDER").as_deref() == Ok("pkcs11")
}

pub(super) fn init_key_provider(data: &DataDir, env: &[(String, String)]) {
    if !pkcs11_provider() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let key_label = data
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let module = var("PINVAULT_TEST_PKCS11_MODULE");
    let token = var("PINVAULT_TEST_PKCS11_TOKEN");
    let out = data
        .command(&[
            "keys",
            "init",
            "--provider",
            "pkcs11",
            "--module",
            &module,
            "--token-label",
            &token,
            "--key-label",
            &key_label,
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run pinvault keys init");
    assert!(
        out.status.success(),
        "keys init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
