// Waits for traffic on several file descriptors (AF_XDP sockets, timers, eventfds) with a
// timeout: poll(2) over a fixed set, for the ingress's event loop. The set is built at start-up;
// wait() allocates nothing.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <vector>

namespace xdpfwd::ingress::xsk {

class Poller {
public:
  // Returns the slot of fd, for set_events / revents.
  std::size_t add(int fd, short events = POLLIN);
  // E.g. POLLIN | POLLOUT while XskSocket::tx_pending(): in copy mode POLLOUT makes the kernel
  // transmit, like a kick.
  void set_events(std::size_t slot, short events) noexcept { fds_[slot].events = events; }
  // Number of slots with events (0: timed out or interrupted by a signal); throws
  // std::system_error on other failures. A negative timeout waits for ever.
  int wait(std::chrono::milliseconds timeout);
  short revents(std::size_t slot) const noexcept { return fds_[slot].revents; }
  bool readable(std::size_t slot) const noexcept { return (fds_[slot].revents & POLLIN) != 0; }
  std::size_t size() const noexcept { return fds_.size(); }

private:
  std::vector<pollfd> fds_;
};

} // namespace xdpfwd::ingress::xsk
