#include "status.hpp"

namespace xdpfwd::ingress::domain {

std::string_view to_string(Status status) noexcept {
  switch (status) {
  case Status::NeedMore: return "need_more";
  case Status::Found: return "found";
  case Status::NoName: return "no_name";
  case Status::BadName: return "bad_name";
  case Status::NotProtocol: return "not_protocol";
  case Status::Malformed: return "malformed";
  case Status::TooLong: return "too_long";
  }
  return "unknown";
}

} // namespace xdpfwd::ingress::domain
