#include "config_watch.hpp"

#include "xdpfwd/system_error.hpp"

#include <sys/inotify.h>

#include <cstring>

namespace xdpfwd {

ConfigWatch::ConfigWatch(boost::asio::io_context& io, std::filesystem::path file, std::function<void()> on_change)
    : file_(std::move(file)), on_change_(std::move(on_change)), inotify_(io), settle_(io) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) throw_errno("inotify for " + file_.string());
  inotify_.assign(fd);
  const auto directory = file_.parent_path().empty() ? std::filesystem::path(".") : file_.parent_path();
  if (::inotify_add_watch(fd, directory.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM) < 0)
    throw_errno("watch " + directory.string());
  read();
}

void ConfigWatch::read() {
  inotify_.async_read_some(boost::asio::buffer(buffer_), [this](const boost::system::error_code& error, size_t length) {
    if (error) return; // closed with the daemon
    bool ours = false;
    for (size_t offset = 0; offset + sizeof(inotify_event) <= length;) {
      inotify_event event;
      std::memcpy(&event, buffer_.data() + offset, sizeof(event));
      if (event.len > 0 && file_.filename() == buffer_.data() + offset + sizeof(inotify_event)) ours = true;
      offset += sizeof(inotify_event) + event.len;
    }
    if (ours) {
      settle_.expires_after(kSettleTime); // restarts the wait while writes go on
      settle_.async_wait([this](const boost::system::error_code& cancelled) {
        if (!cancelled) on_change_();
      });
    }
    read();
  });
}

} // namespace xdpfwd
