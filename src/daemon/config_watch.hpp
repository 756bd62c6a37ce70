// Watches the config file for changes (inotify on its directory: editors and config managers
// replace files rather than write them in place) and calls back once things settle, so that a
// burst of writes makes one reload.
#pragma once

#include "xdpfwd/unique_fd.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>

namespace xdpfwd {

class ConfigWatch {
public:
  static constexpr auto kSettleTime = std::chrono::milliseconds(300);

  // Throws std::system_error when the directory cannot be watched.
  ConfigWatch(boost::asio::io_context& io, std::filesystem::path file, std::function<void()> on_change);

private:
  void read();

  std::filesystem::path file_;
  std::function<void()> on_change_;
  boost::asio::posix::stream_descriptor inotify_;
  boost::asio::steady_timer settle_;
  std::array<char, 4096> buffer_;
};

} // namespace xdpfwd
