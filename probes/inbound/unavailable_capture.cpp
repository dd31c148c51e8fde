#include "probes/inbound/capture_backend.h"

#include <utility>

namespace connectivity::inbound {

namespace {

class UnavailableCaptureBackend final : public CaptureBackend {
 public:
  explicit UnavailableCaptureBackend(std::string why) : why_(std::move(why)) {}
  std::optional<std::string> unavailable() const override { return why_; }
  CaptureStart start(const CaptureSpec& /*spec*/, CaptureSink& /*sink*/) override { return {.capture = nullptr, .why_not = why_}; }

 private:
  std::string why_;
};

}  // namespace

std::shared_ptr<CaptureBackend> make_unavailable_capture_backend(std::string why) {
  return std::make_shared<UnavailableCaptureBackend>(std::move(why));
}

}  // namespace connectivity::inbound
