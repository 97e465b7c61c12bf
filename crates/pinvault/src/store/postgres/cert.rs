//! Certificates for TLS to PostgreSQL: the CAs of `sslrootcert` (or the
//! built-in roots), the certificate check of the modes that do not check the
//! host name (`prefer`, `require`, `verify-ca`), and the server certificate's
//! hash for SCRAM channel binding.

use std::sync::Arc;

use aws_lc_rs::digest;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::verify_server_cert_signed_by_trust_anchor;
use tokio_rustls::rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::ParsedCertificate;
use tokio_rustls::rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use crate::der::element;

use super::url::RootCert;

/// The CAs a server's certificate must chain to.
pub(super) fn load_roots(roots: &RootCert) -> Result<RootCertStore, String> {
    let path = match roots {
        RootCert::BuiltIn => {
            return Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            });
        }
        RootCert::File(path) => path,
    };
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("sslrootcert {shown}: cannot read it: {e}"))?;
    let mut store = RootCertStore::empty();
    for cert in certs {
        let cert = cert.map_err(|e| format!("sslrootcert {shown}: not a PEM file: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("sslrootcert {shown}: a certificate that is no CA: {e}"))?;
    }
    if store.is_empty() {
        return Err(format!(
            "sslrootcert {shown}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
        ));
    }
    Ok(store)
}

/// The certificate check without the host name: with roots, the chain must
/// lead to one of them (`verify-ca`; `prefer` and `require` given an
/// `sslrootcert`, as libpq does); without, any certificate is taken
/// (`prefer`, `require`: encryption against a passive eavesdropper only). The
/// handshake's signatures are checked in every case.
#[derive(Debug)]
pub(super) struct ChainOnly {
    roots: Option<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ChainOnly {
    pub(super) fn new(roots: Option<RootCertStore>, provider: &Arc<CryptoProvider>) -> Self {
        ChainOnly {
            roots,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// RFC 5929 `tls-server-end-point`: the certificate hashed with the hash of
/// its own signature algorithm (SHA-256 for MD5 and SHA-1); `None` for an
/// algorithm whose identifier names no hash (RSASSA-PSS, Ed25519): the login
/// is then SCRAM-SHA-256 without channel binding (and fails with
/// `channel_binding=require`).
pub(super) fn end_point_hash(cert: &[u8]) -> Option<Vec<u8>> {
    let algorithm = signature_hash(cert)?;
    Some(digest::digest(algorithm, cert).as_ref().to_vec())
}

/// The hash of a DER certificate's `signatureAlgorithm`.
fn signature_hash(cert: &[u8]) -> Option<&'static digest::Algorithm> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    let (body, _) = element(cert, 0x30)?;
    let (_, after_tbs) = element(body, 0x30)?;
    let (algorithm, _) = element(after_tbs, 0x30)?;
    let (oid, _) = element(algorithm, 0x06)?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
    Some(match oid {
        // md5, sha1, sha256 WithRSAEncryption; ecdsa-with-SHA1, -SHA256
        [r @ .., 0x04 | 0x05 | 0x0b] if r == RSA => &digest::SHA256,
        [e @ .., 0x01] if e == ECDSA => &digest::SHA256,
        [e @ .., 0x03, 0x02] if e == ECDSA => &digest::SHA256,
        [r @ .., 0x0c] if r == RSA => &digest::SHA384,
        [e @ .., 0x03, 0x03] if e == ECDSA => &digest::SHA384,
        [r @ .., 0x0d] if r == RSA => &digest::SHA512,
        [e @ .., 0x03, 0x04] if e == ECDSA => &digest::SHA512,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A certificate's outline: SEQUENCE { SEQUENCE {tbs}, SEQUENCE {OID}, BIT STRING }.
    fn cert_with(oid: &[u8]) -> Vec<u8> {
        let tbs = [0x30, 0x03, 0x02, 0x01, 0x02];
        let mut alg = vec![0x30, oid.len() as u8 + 2, 0x06, oid.len() as u8];
        alg.extend_from_slice(oid);
        let sig = [0x03, 0x02, 0x00, 0xff];
        let mut body = Vec::new();
        body.extend_from_slice(&tbs);
        body.extend_from_slice(&alg);
        body.extend_from_slice(&sig);
        let mut cert = vec![0x30, 0x81, body.len() as u8];
        cert.extend_from_slice(&body);
        cert
    }

    #[test]
    fn the_signature_hash_picks_the_channel_binding_hash() {
        let ecdsa_sha256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        let ecdsa_sha384 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
        let rsa_sha1 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
        let rsa_sha512 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
        let rsa_pss = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
        let ed25519 = [0x2b, 0x65, 0x70];
        let hash_len = |oid: &[u8]| end_point_hash(&cert_with(oid)).map(|h| h.len());
        assert_eq!(hash_len(&ecdsa_sha256), Some(32));
        assert_eq!(hash_len(&ecdsa_sha384), Some(48));
        assert_eq!(hash_len(&rsa_sha1), Some(32));
        assert_eq!(hash_len(&rsa_sha512), Some(64));
        assert_eq!(hash_len(&rsa_pss), None);
        assert_eq!(hash_len(&ed25519), None);
        let cert = cert_with(&ecdsa_sha256);
        assert_eq!(
            end_point_hash(&cert).unwrap(),
            digest::digest(&digest::SHA256, &cert).as_ref()
        );
    }

    #[test]
    fn malformed_der_gives_no_hash() {
        assert_eq!(end_point_hash(&[]), None);
        assert_eq!(end_point_hash(&[0x30, 0x05, 0x30]), None);
        assert_eq!(end_point_hash(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        let mut cert = cert_with(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
        cert.truncate(cert.len() - 6);
        assert_eq!(end_point_hash(&cert), None);
    }

    #[test]
    fn sslrootcert_files_that_cannot_serve_are_refused_naming_the_parameter() {
        let dir = std::env::temp_dir().join(format!("pv-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = load_roots(&RootCert::File(dir.join("nope.pem"))).unwrap_err();
        assert!(
            missing.contains("sslrootcert") && missing.contains("nope.pem"),
            "{missing}"
        );
        let text = dir.join("text.pem");
        std::fs::write(&text, "not a certificate\n").unwrap();
        let e = load_roots(&RootCert::File(text)).unwrap_err();
        assert!(
            e.contains("sslrootcert") && e.contains("no PEM certificate"),
            "{e}"
        );
        let garbled = dir.join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = load_roots(&RootCert::File(garbled)).unwrap_err();
        assert!(e.contains("sslrootcert"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!load_roots(&RootCert::BuiltIn).unwrap().is_empty());
    }
}
