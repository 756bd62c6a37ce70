// Drives the docker runtime pieces (src/daemon/docker) on their own, for docker_e2e_test.sh,
// until the daemon runs `runtime: docker` itself:
//   docker_runtime_driver --config FILE --socket SOCK --run-dir DIR [--image IMG] [--keep]
//                         [--inspector-arg ARG]...
// Starts every ingress of FILE (overlay network, service attachments, ingress container, veth),
// then follows the services' replicas, printing one line per change on stdout:
//   endpoint INGRESS ifindex=N host_mac=M ingress_mac=M
//   replicas SERVICE N ADDR,ADDR,...
//   ingress INGRESS ACTION            (container events of the ingress containers)
//   repaired INGRESS ifindex=N        (a dead ingress container restarted, its veth re-plumbed)
// SIGTERM/SIGINT: stops, removing what it created unless --keep.
#include "docker_runtime.hpp"
#include "replica_watcher.hpp"
#include "xdpfwd/config.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <mutex>

using namespace xdpfwd;

int main(int argc, char** argv) try {
  std::string config_file;
  docker::DockerRuntime::Settings settings;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--config") config_file = value();
    else if (arg == "--socket") settings.socket = value();
    else if (arg == "--run-dir") settings.run_dir = value();
    else if (arg == "--image") settings.image = value();
    else if (arg == "--inspector-arg") settings.inspector_args.push_back(value());
    else if (arg == "--keep") keep = true;
    else throw std::invalid_argument("unknown argument " + arg);
  }
  spdlog::set_pattern("%H:%M:%S.%e %l %v");
  auto parsed = config::load_file(config_file);
  if (!parsed.config) {
    for (const auto& error : parsed.errors) std::cerr << config_file << ": " << config::to_string(error) << "\n";
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr); // before any thread starts

  std::mutex out;
  auto say = [&](const std::string& line) {
    std::lock_guard lock(out);
    std::cout << line << std::endl;
  };
  docker::DockerRuntime runtime(settings);
  for (const auto& ingress : parsed.config->ingresses) {
    auto endpoint = runtime.adopt(ingress);
    if (!endpoint) endpoint = runtime.start(ingress);
    say("endpoint " + ingress.name + " ifindex=" + std::to_string(endpoint->host_ifindex) +
        " host_mac=" + to_string(endpoint->host_mac) + " ingress_mac=" + to_string(endpoint->ingress_mac));
  }
  {
    docker::ReplicaWatcher watcher(
        {.socket = settings.socket},
        [&](const docker::WatchedService& service, const std::vector<docker::TaskAddress>& replicas) {
          std::string list;
          for (const auto& r : replicas) list += (list.empty() ? "" : ",") + r.address;
          say("replicas " + service.service + " " + std::to_string(replicas.size()) + " " + list);
        },
        [&](const std::string& ingress, const std::string& action) {
          say("ingress " + ingress + " " + action);
          if (action != "die") return;
          try {
            const auto endpoint = runtime.repair(ingress);
            say("repaired " + ingress + " ifindex=" + std::to_string(endpoint.host_ifindex));
          } catch (const std::exception& error) {
            say("repair-failed " + ingress + " " + error.what());
          }
        });
    watcher.set_services(runtime.watched_services());
    int received = 0;
    sigwait(&signals, &received);
    say("stopping");
  }
  if (keep) runtime.release_all();
  return 0;
} catch (const std::exception& error) {
  std::cerr << "docker_runtime_driver: " << error.what() << std::endl;
  return 1;
}
