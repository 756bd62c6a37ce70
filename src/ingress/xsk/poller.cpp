#include "poller.hpp"

#include "xdpfwd/system_error.hpp"

#include <cerrno>

namespace xdpfwd::ingress::xsk {

std::size_t Poller::add(int fd, short events) {
  fds_.push_back({fd, events, 0});
  return fds_.size() - 1;
}

int Poller::wait(std::chrono::milliseconds timeout) {
  const int ready = ::poll(fds_.data(), fds_.size(), timeout.count() < 0 ? -1 : static_cast<int>(timeout.count()));
  if (ready >= 0) return ready;
  if (errno == EINTR) {
    for (auto& entry : fds_) entry.revents = 0;
    return 0;
  }
  throw_errno("poll AF_XDP sockets");
}

} // namespace xdpfwd::ingress::xsk
