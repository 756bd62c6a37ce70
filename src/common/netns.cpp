#include "xdpfwd/netns.hpp"

#include "xdpfwd/system_error.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

namespace xdpfwd {
namespace {

std::string path_of(const std::string& name) { return std::string(NamedNetns::kRunDir) + "/" + name; }

// /run/netns must be a shared mount point so that a namespace bind-mounted here is seen by every
// mount namespace (iproute2 sets it up the same way, and both tools then agree).
void prepare_run_dir() {
  if (::mkdir(NamedNetns::kRunDir, 0755) < 0 && errno != EEXIST)
    throw_errno(std::string("create ") + NamedNetns::kRunDir);
  for (bool bound = false;; bound = true) {
    if (::mount("", NamedNetns::kRunDir, "none", MS_SHARED | MS_REC, nullptr) == 0) return;
    if (errno != EINVAL || bound) throw_errno(std::string("make ") + NamedNetns::kRunDir + " a shared mount");
    if (::mount(NamedNetns::kRunDir, NamedNetns::kRunDir, "none", MS_BIND | MS_REC, nullptr) < 0)
      throw_errno(std::string("bind-mount ") + NamedNetns::kRunDir);
  }
}

} // namespace

NamedNetns NamedNetns::create(const std::string& name) {
  prepare_run_dir();
  const std::string path = path_of(name);
  UniqueFd placeholder(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!placeholder) throw_errno("create network namespace " + name);
  placeholder.reset();

  // unshare() on a thread of its own: the daemon's other threads stay where they are.
  int error = 0;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) < 0 ||
        ::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) < 0)
      error = errno;
  }).join();
  if (error != 0) {
    ::unlink(path.c_str());
    throw_errno(error, "create network namespace " + name);
  }
  return NamedNetns(name, open(name));
}

bool NamedNetns::remove(const std::string& name) {
  const std::string path = path_of(name);
  if (::access(path.c_str(), F_OK) < 0) return false;
  ::umount2(path.c_str(), MNT_DETACH);
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) throw_errno("remove network namespace " + name);
  return true;
}

bool NamedNetns::exists(const std::string& name) { return ::access(path_of(name).c_str(), F_OK) == 0; }

UniqueFd NamedNetns::open(const std::string& name) {
  UniqueFd fd(::open(path_of(name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open network namespace " + name);
  return fd;
}

NamedNetns& NamedNetns::operator=(NamedNetns&& other) noexcept {
  if (this != &other) {
    if (!name_.empty()) remove(name_);
    name_ = std::move(other.name_);
    other.name_.clear();
    fd_ = std::move(other.fd_);
  }
  return *this;
}

NamedNetns::~NamedNetns() {
  if (name_.empty()) return;
  try {
    remove(name_);
  } catch (...) {
    // A destructor cannot report; the daemon removes names explicitly where it must know.
  }
}

void run_in_netns(int netns_fd, const std::function<void()>& fn) {
  std::exception_ptr failure;
  std::thread([&] {
    try {
      if (::setns(netns_fd, CLONE_NEWNET) < 0) throw_errno("enter network namespace");
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  }).join();
  if (failure) std::rethrow_exception(failure);
}

void write_sysctl(const std::string& key, const std::string& value) {
  const std::string path = "/proc/sys/" + key;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw_errno("open sysctl " + key);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    throw_errno("set sysctl " + key + " = " + value);
}

} // namespace xdpfwd
