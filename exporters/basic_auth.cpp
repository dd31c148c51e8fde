#include "exporters/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <vector>

namespace connectivity {

// crypt_r's scratch space: 32 KiB, so one, kept, used under bcrypt_mutex_.
struct BasicAuthenticator::CryptState {
  crypt_data data{};
};

namespace {

// The hash cost as its two digits say ("$2y$10$..."): what one check against it takes.
int cost_of(const std::string& hash) { return (hash[4] - '0') * 10 + (hash[5] - '0'); }

}  // namespace

BasicAuthenticator::BasicAuthenticator(std::map<std::string, std::string, std::less<>> users)
    : users_(std::move(users)), crypt_(std::make_unique<CryptState>()) {
  for (const auto& [user, hash] : users_)
    if (costliest_hash_.empty() || cost_of(hash) > cost_of(costliest_hash_)) costliest_hash_ = hash;
}

BasicAuthenticator::~BasicAuthenticator() = default;

bool BasicAuthenticator::allows(std::string_view user, std::string_view password) {
  if (users_.empty()) return false;
  const auto found = users_.find(user);
  const bool known_user = found != users_.end();
  const std::string& hash = known_user ? found->second : costliest_hash_;

  // The digest names user, hash and password together: a changed hash (a reload) or password
  // misses, and the password itself is never kept.
  Digest digest{};
  {
    std::string material;
    material.reserve(user.size() + hash.size() + password.size() + 2);
    material.append(user).push_back('\0');
    material.append(hash).push_back('\0');
    material.append(password);
    SHA256(reinterpret_cast<const unsigned char*>(material.data()), material.size(), digest.data());
    OPENSSL_cleanse(material.data(), material.size());
  }
  if (known_user) {
    const std::lock_guard lock(remembered_mutex_);
    if (remembered_.contains(digest)) return true;
  }

  bool matches = false;
  {
    const std::lock_guard lock(bcrypt_mutex_);
    ++runs_;
    // crypt_r takes NUL-terminated strings: a password with a NUL in it cannot be one set with
    // htpasswd, and would be cut short, so it is checked as given and cannot match.
    const std::string password_text(password);
    const char* result = crypt_r(password_text.c_str(), hash.c_str(), &crypt_->data);
    matches = password_text.size() == std::strlen(password_text.c_str()) && result != nullptr &&
              std::strlen(result) == hash.size() && CRYPTO_memcmp(result, hash.data(), hash.size()) == 0;
    OPENSSL_cleanse(&crypt_->data, sizeof(crypt_->data));
  }
  if (!known_user || !matches) return false;

  const std::lock_guard lock(remembered_mutex_);
  if (remembered_.insert(digest).second) {
    if (remembered_.size() > kRemembered) remembered_.erase(order_[next_]);
    order_[next_] = digest;
    next_ = (next_ + 1) % kRemembered;
  }
  return true;
}

std::uint64_t BasicAuthenticator::bcrypt_runs() const {
  const std::lock_guard lock(bcrypt_mutex_);
  return runs_;
}

std::optional<std::pair<std::string, std::string>> parse_basic_authorization(std::string_view header) {
  constexpr std::string_view kScheme = "basic ";
  if (header.size() < kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i)  // the scheme's name is case-insensitive
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return std::nullopt;
  std::string_view encoded = header.substr(kScheme.size());
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  if (encoded.empty() || encoded.size() % 4 != 0 || encoded.size() > 4096) return std::nullopt;
  std::vector<unsigned char> decoded(encoded.size() / 4 * 3 + 1);
  const int length = EVP_DecodeBlock(decoded.data(), reinterpret_cast<const unsigned char*>(encoded.data()),
                                     static_cast<int>(encoded.size()));
  if (length < 0) return std::nullopt;
  // EVP_DecodeBlock counts the bytes the padding stands for as decoded zeros.
  const auto padding = static_cast<int>(std::count(encoded.end() - 2, encoded.end(), '='));
  const std::string text(reinterpret_cast<const char*>(decoded.data()), static_cast<std::size_t>(length - padding));
  const auto colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(text.substr(0, colon), text.substr(colon + 1));
}

}  // namespace connectivity
