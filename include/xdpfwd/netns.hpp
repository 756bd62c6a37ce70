// Network namespaces: named ones as `ip netns` makes them (a bind mount under /run/netns, so
// operators see them in `ip netns list`), and running code inside one.
#pragma once

#include "xdpfwd/unique_fd.hpp"

#include <exception>
#include <functional>
#include <string>

namespace xdpfwd {

// A named network namespace. Owning handle: the destructor removes the name (the namespace
// itself goes away with its last user) unless release() was called.
class NamedNetns {
public:
  static constexpr const char* kRunDir = "/run/netns";

  // Creates a new, empty namespace; fails with EEXIST if the name is taken.
  static NamedNetns create(const std::string& name);
  // Removes a name, like `ip netns delete`; false if there was none.
  static bool remove(const std::string& name);
  static bool exists(const std::string& name);
  // Opens an existing named namespace without owning its name.
  static UniqueFd open(const std::string& name);
  // Takes ownership of an existing name (one a previous run of the daemon left on purpose).
  static NamedNetns adopt(const std::string& name) { return NamedNetns(name, open(name)); }

  NamedNetns(NamedNetns&&) noexcept = default;
  NamedNetns& operator=(NamedNetns&&) noexcept;
  NamedNetns(const NamedNetns&) = delete;
  NamedNetns& operator=(const NamedNetns&) = delete;
  ~NamedNetns();

  const std::string& name() const { return name_; }
  int fd() const { return fd_.get(); }
  // Keeps the namespace after this handle is gone.
  void release() { name_.clear(); }

private:
  NamedNetns(std::string name, UniqueFd fd) : name_(std::move(name)), fd_(std::move(fd)) {}
  std::string name_;
  UniqueFd fd_;
};

// Runs fn on a thread that has joined the network namespace netns_fd and returns when it is
// done; an exception thrown by fn is rethrown here. Sockets fn creates stay in that namespace,
// which is how the daemon talks netlink to an ingress netns from its main thread.
void run_in_netns(int netns_fd, const std::function<void()>& fn);

// Writes a sysctl of the calling thread's network namespace, e.g.
// write_sysctl("net/ipv4/conf/xf-waf/forwarding", "1").
void write_sysctl(const std::string& key, const std::string& value);

} // namespace xdpfwd
