// Certificates the TLS and HTTPS tests need, generated on the fly with OpenSSL's C API into a
// private temporary directory (removed on destruction): a CA, leaves signed by it (valid,
// expired, not yet valid, wrong hostname), a self-signed leaf, and a client certificate.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace connectivity::testing {

struct CertFiles {
  std::string cert;   // PEM path: the certificate alone
  std::string key;    // PEM path: its private key
  std::string chain;  // PEM path: the certificate followed by its issuing CA (empty for self-signed)
  std::string sha256_fingerprint;  // lowercase hex of SHA-256 over the DER, no separators
  std::string serial_hex;          // lowercase hex, no leading zeros
};

struct LeafSpec {
  std::string common_name = "localhost";
  std::vector<std::string> dns_names = {"localhost"};   // subjectAltName DNS entries
  std::vector<std::string> ip_addresses = {"127.0.0.1", "::1"};  // subjectAltName IP entries
  std::chrono::seconds not_before_offset{-3600};        // relative to now
  std::chrono::seconds not_after_offset{30 * 24 * 3600};
  bool self_signed = false;  // else signed by the PKI's CA
  bool client = false;       // extendedKeyUsage clientAuth instead of serverAuth
};

class TestPki {
 public:
  TestPki();   // creates the directory and the CA (RSA 2048 or EC P-256, valid a year)
  ~TestPki();  // removes the directory
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& ca_file() const { return ca_file_; }  // the CA certificate, PEM
  // Issues a certificate; `name` makes the file names unique within dir().
  CertFiles issue(const std::string& name, const LeafSpec& spec = {});

 private:
  std::string dir_;
  std::string ca_file_;
  void* ca_key_ = nullptr;   // EVP_PKEY*
  void* ca_cert_ = nullptr;  // X509*
};

}  // namespace connectivity::testing
