#include "host_name.hpp"

#include <algorithm>

namespace xdpfwd::ingress::domain {
namespace {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_lower_alnum(char c) noexcept { return (c >= 'a' && c <= 'z') || is_digit(c); }
constexpr char to_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

} // namespace

HostName classify_host(std::string_view text, NameRules rules) {
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  if (text.empty() || text.size() > kMaxNameLength) return {};
  if (std::all_of(text.begin(), text.end(), [](char c) { return is_digit(c) || c == '.'; })) {
    const bool empty_label = text.front() == '.' || text.find("..") != std::string_view::npos;
    return {.kind = empty_label ? HostName::Kind::Invalid : HostName::Kind::Address, .name = {}};
  }

  std::string name(text.size(), '\0');
  std::transform(text.begin(), text.end(), name.begin(), to_lower);
  const bool underscore = rules == NameRules::DnsQuery;
  std::size_t label_start = 0;
  bool last_label_numeric = true;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') {
      const char c = name[i];
      if (!is_lower_alnum(c) && c != '-' && !(underscore && c == '_')) return {};
      continue;
    }
    const std::string_view label(name.data() + label_start, i - label_start);
    if (label.empty() || label.size() > kMaxLabelLength || label.front() == '-' || label.back() == '-') return {};
    last_label_numeric = std::all_of(label.begin(), label.end(), is_digit);
    label_start = i + 1;
  }
  // "10.0.0.1" is caught above; "a.123" has an all-numeric top-level label, which no host name
  // has (RFC 3696 2).
  if (last_label_numeric) return {};
  return {.kind = HostName::Kind::Name, .name = std::move(name)};
}

} // namespace xdpfwd::ingress::domain
