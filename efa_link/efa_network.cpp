#include "efa_link/efa_network.h"

#include <stdexcept>

namespace wse::efa {

namespace {
std::uint64_t now_ps() { return sc_core::sc_time_stamp().value(); }
}  // namespace

EfaAttachment::EfaAttachment(sc_core::sc_module_name name, EfaNetwork& network, std::uint32_t machine)
    : sc_core::sc_module(name), work_requests("work_requests"), network_(network), machine_(machine) {
  work_requests.register_b_transport(this, &EfaAttachment::b_transport);
  work_requests.register_nb_transport_fw(this, &EfaAttachment::nb_transport_fw);
}

void EfaAttachment::b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  sc_core::sc_event done;
  const std::uint64_t id = network_.post(*this, gp, delay);
  network_.pending_[id] = EfaNetwork::Pending{&gp, this, &done};
  sc_core::wait(done);
  delay = sc_core::SC_ZERO_TIME;
}

tlm::tlm_sync_enum EfaAttachment::nb_transport_fw(tlm::tlm_generic_payload& gp, tlm::tlm_phase& phase,
                                                  sc_core::sc_time& delay) {
  if (phase == tlm::END_RESP) return tlm::TLM_COMPLETED;
  if (phase != tlm::BEGIN_REQ) {
    SC_REPORT_ERROR("efa", "EfaAttachment: unexpected phase on nb_transport_fw");
    return tlm::TLM_COMPLETED;
  }
  const std::uint64_t id = network_.post(*this, gp, delay);
  network_.pending_[id] = EfaNetwork::Pending{&gp, this, nullptr};
  phase = tlm::END_REQ;
  return tlm::TLM_UPDATED;
}

EfaNetwork::EfaNetwork(sc_core::sc_module_name name, const EfaNetworkConfig& config, const EfaFaults& faults)
    : sc_core::sc_module(name), engine_(config, faults, std::string(basename())) {
  if (sc_core::sc_get_time_resolution() != sc_core::sc_time(1, sc_core::SC_PS))
    throw std::logic_error("EfaNetwork needs the SystemC time resolution of 1 ps");
  for (std::uint32_t m = 0; m < engine_.machines(); ++m) {
    const std::uint32_t senders = engine_.config().senders;
    const std::string n =
        m < senders ? "sender" + std::to_string(m) : "receiver" + std::to_string(m - senders);
    attachments_.push_back(std::make_unique<EfaAttachment>(n.c_str(), *this, m));
  }
  engine_.on_completion([this](const Completion& c) { complete(c); });
  SC_HAS_PROCESS(EfaNetwork);
  SC_METHOD(advance);
  sensitive << wake_;
  dont_initialize();
}

EfaNetwork::~EfaNetwork() = default;

std::uint64_t EfaNetwork::post(EfaAttachment& from, tlm::tlm_generic_payload& gp,
                               const sc_core::sc_time& delay) {
  auto* ext = gp.get_extension<EfaWorkRequestExt>();
  if (!ext) {
    SC_REPORT_ERROR("efa", "RDMA work request without EfaWorkRequestExt");
    throw std::invalid_argument("RDMA work request without EfaWorkRequestExt");
  }
  WorkRequest wr;
  wr.op = gp.is_read() ? RdmaOp::Read : RdmaOp::Write;
  wr.initiator = from.machine();
  wr.target = ext->target;
  wr.initiator_adapter = ext->initiator_adapter;
  wr.target_adapter = ext->target_adapter;
  wr.bytes = ext->bytes != 0 ? ext->bytes : gp.get_data_length();
  wr.local = reinterpret_cast<std::byte*>(gp.get_data_ptr());
  wr.remote = ext->remote;
  wr.tag = ext->tag;
  // Bring the engine to the present before adding work to it.
  engine_.run_until(now_ps());
  const std::uint64_t at = now_ps() + delay.value();
  const std::uint64_t id = engine_.post(wr, at);
  wake_at(at);
  return id;
}

void EfaNetwork::wake_at(std::uint64_t t_ps) {
  const std::uint64_t now = now_ps();
  // The engine's event times are sums of picoseconds: one beyond the longest simulated
  // time fails the run (TimeOverflow) instead of wrapping around.
  if (t_ps > kMaxSimulatedPs) (void)sim_ps(static_cast<double>(t_ps) * 1e-12, "an EFA network event");
  wake_.notify(sc_core::sc_time::from_value(t_ps > now ? t_ps - now : 0));
}

void EfaNetwork::advance() {
  engine_.run_until(now_ps());
  if (auto next = engine_.next_event_ps()) wake_at(*next);
}

void EfaNetwork::complete(const Completion& c) {
  auto it = pending_.find(c.message);
  if (it == pending_.end()) return;
  Pending p = it->second;
  pending_.erase(it);
  auto* ext = p.gp->get_extension<EfaWorkRequestExt>();
  ext->completion = c;
  p.gp->set_response_status(c.ok ? tlm::TLM_OK_RESPONSE : tlm::TLM_GENERIC_ERROR_RESPONSE);
  if (p.done) {
    p.done->notify(sc_core::SC_ZERO_TIME);
    return;
  }
  tlm::tlm_phase phase = tlm::BEGIN_RESP;
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  p.attachment->work_requests->nb_transport_bw(*p.gp, phase, delay);
}

}  // namespace wse::efa
