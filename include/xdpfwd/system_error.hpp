// The one error model of the system layer: std::system_error whose message is the operation and
// its subject, so what() reads "attach xdp to eth0: Operation not supported".
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace xdpfwd {

[[noreturn]] inline void throw_errno(int error, const std::string& context) {
  throw std::system_error(error, std::generic_category(), context);
}

[[noreturn]] inline void throw_errno(const std::string& context) { throw_errno(errno, context); }

// libbpf and libxdp return -errno.
inline void check_libbpf(int ret, const std::string& context) {
  if (ret < 0) throw_errno(-ret, context);
}

} // namespace xdpfwd
