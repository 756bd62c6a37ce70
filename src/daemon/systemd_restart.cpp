#include "systemd_restart.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace xdpfwd {
namespace {

constexpr const char* kSystemd = "org.freedesktop.systemd1";

struct BusUnref {
  void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
struct MessageUnref {
  void operator()(sd_bus_message* message) const { sd_bus_message_unref(message); }
};

} // namespace

bool systemd_restarting_this_unit() {
  char* unit_name = nullptr;
  if (sd_pid_get_unit(0, &unit_name) < 0) return false; // not a systemd service
  const std::string unit(unit_name);
  std::free(unit_name);

  sd_bus* raw_bus = nullptr;
  if (sd_bus_open_system(&raw_bus) < 0) return false;
  std::unique_ptr<sd_bus, BusUnref> bus(raw_bus);
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* raw = nullptr;
  bool restarting = false;
  if (sd_bus_call_method(bus.get(), kSystemd, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "GetUnit",
                         &error, &raw, "s", unit.c_str()) >= 0) {
    std::unique_ptr<sd_bus_message, MessageUnref> reply(raw);
    const char* unit_path = nullptr;
    if (sd_bus_message_read(reply.get(), "o", &unit_path) >= 0) {
      sd_bus_message* raw_job = nullptr;
      if (sd_bus_get_property(bus.get(), kSystemd, unit_path, "org.freedesktop.systemd1.Unit", "Job", &error, &raw_job,
                              "(uo)") >= 0) {
        std::unique_ptr<sd_bus_message, MessageUnref> job(raw_job);
        uint32_t id = 0;
        const char* job_path = nullptr;
        char* type = nullptr;
        if (sd_bus_message_read(job.get(), "(uo)", &id, &job_path) >= 0 && id != 0 &&
            sd_bus_get_property_string(bus.get(), kSystemd, job_path, "org.freedesktop.systemd1.Job", "JobType", &error,
                                       &type) >= 0) {
          const std::string job_type(type);
          std::free(type);
          restarting = job_type == "restart" || job_type == "try-restart" || job_type == "reload-or-restart";
          spdlog::info("systemd job for {}: {}", unit, job_type);
        }
      }
    }
  }
  if (sd_bus_error_is_set(&error)) spdlog::debug("asking systemd about {}: {}", unit, error.message);
  sd_bus_error_free(&error);
  return restarting;
}

} // namespace xdpfwd
