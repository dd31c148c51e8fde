// Conversions between seconds since the epoch and UTC calendar fields, the same on every
// platform: gmtime_r and timegm are POSIX, not in the Windows C runtime.
#pragma once

#include <chrono>
#include <ctime>

namespace connectivity {

// The UTC calendar fields of `seconds`, as gmtime_r gives them.
inline std::tm utc_calendar(std::time_t seconds) {
  std::tm parts{};
#if defined(_WIN32)
  // Not gmtime_s: the Windows CRT's fails (EINVAL, every field -1) past the year 3000, and
  // certificates that never expire say 9999. The fields from std::chrono's civil calendar instead.
  using namespace std::chrono;
  const sys_seconds time{std::chrono::seconds{seconds}};
  const sys_days date = floor<days>(time);
  const year_month_day ymd{date};
  const hh_mm_ss clock{time - date};
  parts.tm_year = static_cast<int>(ymd.year()) - 1900;
  parts.tm_mon = static_cast<int>(static_cast<unsigned>(ymd.month())) - 1;
  parts.tm_mday = static_cast<int>(static_cast<unsigned>(ymd.day()));
  parts.tm_hour = static_cast<int>(clock.hours().count());
  parts.tm_min = static_cast<int>(clock.minutes().count());
  parts.tm_sec = static_cast<int>(clock.seconds().count());
  parts.tm_wday = static_cast<int>(weekday{date}.c_encoding());
  parts.tm_yday = static_cast<int>((date - sys_days{ymd.year() / January / 1}).count());
#else
  gmtime_r(&seconds, &parts);
#endif
  return parts;
}

// Seconds since the epoch of UTC calendar fields in range (as ASN1_TIME_to_tm gives them): what
// timegm returns, computed here because the Windows CRT's _mkgmtime stops at the year 3000, and
// certificates that never expire say 9999.
inline std::time_t utc_seconds(const std::tm& parts) {
  using namespace std::chrono;
  const sys_days date{year{parts.tm_year + 1900} / month{static_cast<unsigned>(parts.tm_mon + 1)} /
                      day{static_cast<unsigned>(parts.tm_mday)}};
  const auto time = date + hours{parts.tm_hour} + minutes{parts.tm_min} + seconds{parts.tm_sec};
  return static_cast<std::time_t>(time.time_since_epoch().count());
}

}  // namespace connectivity
