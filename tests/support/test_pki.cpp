#include "tests/support/test_pki.h"

#include "tests/support/temp_dir.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace connectivity::testing {

namespace {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* pointer) const {
    Free(pointer);
  }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using Ia5StringPtr = std::unique_ptr<ASN1_IA5STRING, Deleter<ASN1_IA5STRING_free>>;
using OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING_free>>;

constexpr std::string_view kCaCommonName = "connectivity-agent test CA";

// Throws with everything OpenSSL queued for this thread, so a failure says which call broke
// and why; the queue is emptied so the next failure does not report stale entries.
[[noreturn]] void fail(const std::string& what) {
  std::string message = "test PKI: " + what;
  bool any = false;
  while (const unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    message += any ? "; " : ": ";
    message += text;
    any = true;
  }
  if (!any) message += ": (no OpenSSL error queued)";
  throw std::runtime_error(message);
}

void check(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

KeyPtr new_ec_key() {
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  check(key != nullptr, "generating an EC P-256 key");
  return key;
}

// Positive and below 2^63 so its DER is at most 8 bytes; never zero (RFC 5280 wants > 0).
std::uint64_t random_serial() {
  std::uint64_t serial = 0;
  while (serial == 0) {
    unsigned char bytes[sizeof serial];
    check(RAND_bytes(bytes, sizeof bytes) == 1, "drawing a random serial");
    for (const unsigned char byte : bytes) serial = (serial << 8) | byte;
    serial &= ~(std::uint64_t{1} << 63);
  }
  return serial;
}

std::string to_hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    hex += kDigits[data[i] >> 4];
    hex += kDigits[data[i] & 0x0f];
  }
  return hex;
}

void set_validity(X509* cert, std::chrono::seconds not_before, std::chrono::seconds not_after) {
  // Split into days and seconds: X509_time_adj_ex's seconds argument is a long, and days
  // keep far-future offsets clear of any overflow.
  const auto adjust = [](ASN1_TIME* time, std::chrono::seconds offset) {
    constexpr long long kDay = 24LL * 3600;
    const long long total = offset.count();
    return X509_time_adj_ex(time, static_cast<int>(total / kDay), static_cast<long>(total % kDay),
                            nullptr) != nullptr;
  };
  check(adjust(X509_getm_notBefore(cert), not_before), "setting notBefore");
  check(adjust(X509_getm_notAfter(cert), not_after), "setting notAfter");
}

NamePtr common_name(const std::string& cn) {
  NamePtr name(X509_NAME_new());
  check(name != nullptr, "allocating a name");
  if (!cn.empty()) {
    check(X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                     0) == 1,
          "setting CN=" + cn);
  }
  return name;
}

// Starts a certificate: version 3, fresh serial, subject, issuer, key and validity.
CertPtr new_certificate(const X509_NAME* subject, const X509_NAME* issuer, EVP_PKEY* key,
                        std::chrono::seconds not_before, std::chrono::seconds not_after,
                        std::uint64_t serial) {
  CertPtr cert(X509_new());
  check(cert != nullptr, "allocating a certificate");
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "setting the version");
  check(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial) == 1,
        "setting the serial");
  check(X509_set_subject_name(cert.get(), subject) == 1, "setting the subject");
  check(X509_set_issuer_name(cert.get(), issuer) == 1, "setting the issuer");
  check(X509_set_pubkey(cert.get(), key) == 1, "setting the public key");
  set_validity(cert.get(), not_before, not_after);
  return cert;
}

// Adds an extension written in openssl.cnf syntax. `issuer` is what authorityKeyIdentifier
// reads its key id from (the certificate itself when self-signed).
void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
  check(extension != nullptr, std::string("building extension ") + OBJ_nid2sn(nid) + "=" + value);
  check(X509_add_ext(cert, extension.get(), -1) == 1,
        std::string("adding extension ") + OBJ_nid2sn(nid));
}

// Built by hand rather than from a "DNS:a,IP:b" string so that a name containing a comma
// (a deliberately odd test name) cannot be misparsed into two entries.
void add_subject_alt_names(X509* cert, const LeafSpec& spec) {
  if (spec.dns_names.empty() && spec.ip_addresses.empty()) return;
  GeneralNamesPtr names(GENERAL_NAMES_new());
  check(names != nullptr, "allocating subjectAltName");
  // Takes ownership of `value` (a DNS name's IA5String or an address's octet string).
  const auto push = [&](int type, ASN1_STRING* value) {
    GeneralNamePtr name(GENERAL_NAME_new());
    if (name == nullptr) ASN1_STRING_free(value);
    check(name != nullptr, "allocating a subjectAltName entry");
    GENERAL_NAME_set0_value(name.get(), type, value);
    check(sk_GENERAL_NAME_push(names.get(), name.get()) > 0, "adding a subjectAltName entry");
    static_cast<void>(name.release());  // owned by `names` now
  };
  for (const std::string& dns : spec.dns_names) {
    Ia5StringPtr text(ASN1_IA5STRING_new());
    check(text != nullptr && ASN1_STRING_set(text.get(), dns.data(), static_cast<int>(dns.size())) == 1,
          "encoding DNS name " + dns);
    push(GEN_DNS, text.release());
  }
  for (const std::string& ip : spec.ip_addresses) {
    OctetStringPtr address(a2i_IPADDRESS(ip.c_str()));
    check(address != nullptr, "parsing IP address " + ip);
    push(GEN_IPADD, address.release());
  }
  // RFC 5280: the extension is critical when the subject is empty.
  const int critical = spec.common_name.empty() ? 1 : 0;
  check(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), critical, X509V3_ADD_DEFAULT) == 1,
        "adding subjectAltName");
}

void sign(X509* cert, EVP_PKEY* key) {
  check(X509_sign(cert, key, EVP_sha256()) > 0, "signing");
}

void write_file(const std::string& path, const std::function<bool(BIO*)>& write, const std::string& what) {
  BioPtr file(BIO_new_file(path.c_str(), "w"));
  check(file != nullptr, "creating " + path);
  check(write(file.get()), "writing " + what + " to " + path);
  check(BIO_flush(file.get()) == 1, "flushing " + path);
}

void write_certificates(const std::string& path, std::initializer_list<X509*> certs) {
  write_file(
      path,
      [&](BIO* file) {
        for (X509* cert : certs)
          if (PEM_write_bio_X509(file, cert) != 1) return false;
        return true;
      },
      "certificates");
}

void write_key(const std::string& path, EVP_PKEY* key) {
  write_file(
      path,
      [&](BIO* file) {
        return PEM_write_bio_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
      },
      "private key");
}

std::string sha256_fingerprint(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  check(X509_digest(cert, EVP_sha256(), digest, &size) == 1, "hashing the certificate");
  return to_hex(digest, size);
}

std::string serial_hex(std::uint64_t serial) {
  std::ostringstream hex;
  hex << std::hex << serial;
  return hex.str();
}

}  // namespace

TestPki::TestPki() {
  dir_ = make_temp_dir("connectivity-pki");
  try {
    KeyPtr key = new_ec_key();
    const NamePtr name = common_name(std::string(kCaCommonName));
    CertPtr cert = new_certificate(name.get(), name.get(), key.get(), std::chrono::hours(-1),
                                   std::chrono::days(365), random_serial());
    add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    // The subject key id first: authorityKeyIdentifier of a self-signed certificate copies it.
    add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
    add_extension(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always");
    sign(cert.get(), key.get());
    ca_file_ = dir_ + "/ca.crt";
    write_certificates(ca_file_, {cert.get()});
    write_key(dir_ + "/ca.key", key.get());
    ca_key_ = key.release();
    ca_cert_ = cert.release();
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw;
  }
}

TestPki::~TestPki() {
  EVP_PKEY_free(static_cast<EVP_PKEY*>(ca_key_));
  X509_free(static_cast<X509*>(ca_cert_));
  std::error_code ignored;  // a destructor must not throw; a leftover temp dir is harmless
  std::filesystem::remove_all(dir_, ignored);
}

CertFiles TestPki::issue(const std::string& name, const LeafSpec& spec) {
  // "ca" would overwrite the CA's own files.
  if (name.empty() || name == "ca" || name.find('/') != std::string::npos)
    throw std::invalid_argument("test PKI: certificate name '" + name +
                                "' must be non-empty, not 'ca', and without '/'");
  auto* const ca_key = static_cast<EVP_PKEY*>(ca_key_);
  auto* const ca_cert = static_cast<X509*>(ca_cert_);

  KeyPtr key = new_ec_key();
  const NamePtr subject = common_name(spec.common_name);
  const std::uint64_t serial = random_serial();
  const X509_NAME* issuer_name = spec.self_signed ? subject.get() : X509_get_subject_name(ca_cert);
  CertPtr cert = new_certificate(subject.get(), issuer_name, key.get(), spec.not_before_offset,
                                 spec.not_after_offset, serial);
  X509* const issuer = spec.self_signed ? cert.get() : ca_cert;

  add_extension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature");
  add_extension(cert.get(), issuer, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
  add_subject_alt_names(cert.get(), spec);
  add_extension(cert.get(), issuer, NID_subject_key_identifier, "hash");
  add_extension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  sign(cert.get(), spec.self_signed ? key.get() : ca_key);

  CertFiles files;
  files.cert = dir_ + "/" + name + ".crt";
  files.key = dir_ + "/" + name + ".key";
  write_certificates(files.cert, {cert.get()});
  write_key(files.key, key.get());
  if (!spec.self_signed) {
    files.chain = dir_ + "/" + name + "-chain.pem";
    write_certificates(files.chain, {cert.get(), ca_cert});
  }
  files.sha256_fingerprint = sha256_fingerprint(cert.get());
  files.serial_hex = serial_hex(serial);
  return files;
}

}  // namespace connectivity::testing
