#include "apps/experiments/energy.h"

#include <stdexcept>

#include "systemc_models/config/config.h"

namespace wse::experiments {

namespace {

// One key of a power model: its name under energy.<kind>, description and default, and
// the Activity field it prices.
struct Coefficient {
  std::string_view key;
  std::string_view term;  // the summary's name of the term
  double Activity::*units;
  std::string_view doc;
  std::string_view def;
};

struct ClassDefaults {
  std::string_view kind;
  std::string_view doc;
  std::string_view static_doc;
  std::string_view static_def;
  std::vector<Coefficient> terms;
};

// Each default in one place, derived in docs/energy.md from docs/hardware_reference.md,
// "Power and energy". Shared figures: HBM "3.9 pJ/bit" = 31.2 pJ/B; accelerator idle ~11%
// of TDP (the H200's "~80 W" of 700 W); a host share of 2,800 W per instance (the DGX
// H100's "8.4 kW max observed in training" less 8 x 700 W of GPUs); long-reach SerDes
// "5-10 pJ/bit" taken at 7.5 pJ/bit = 60 pJ/B.
const std::vector<ClassDefaults>& class_defaults() {
  static const std::vector<ClassDefaults> defaults = {
      {"trainium_instance",
       "power model of one Trainium instance (trn2.48xlarge)",
       "watts one instance draws whatever it does: 16 chips idle and the host (assumption, docs/energy.md)",
       // assumption: 16 x 55 W (11% of the ~500 W chip) + 2,800 W host
       "3680",
       {// assumption: (500 W - 55 W idle - 2.9 TB/s x 31.2 pJ/B) / 667 dense BF16 TFLOPS
        {"pj_per_flop_16bit", "compute", &Activity::flops,
         "picojoules per BF16/FP16 matrix FLOP (chip power above idle and HBM at full rate over the dense "
         "peak)",
         "0.532"},
        // assumption: the same 354.52 W over 1,299 dense FP8 TFLOPS
        {"pj_per_flop_8bit", "compute", &Activity::flops,
         "picojoules per FP8 matrix FLOP (as the 16-bit one)", "0.273"},
        {"pj_per_hbm_byte", "hbm", &Activity::memory_bytes, "picojoules per HBM byte (HBM3E 3.9 pJ/bit)",
         "31.2"},
        {"pj_per_neuronlink_byte", "neuronlink", &Activity::link_bytes,
         "picojoules per byte on a NeuronLink link (assumption: long-reach SerDes 7.5 pJ/bit)", "60"}}},
      {"cs3",
       "power model of one CS-3 system",
       "watts one CS-3 draws whatever it does: cooling, I/O and power supplies, the wafer idle (assumption, "
       "docs/energy.md)",
       // assumption: CS-1's 4 kW cooling + 1 kW rest (20 - 15 - 4) + 11% of the wafer's 23 - 5 = 18 kW
       "6980",
       {// assumption: Horowitz FP16 FMA 1.5 pJ (45 nm) / 2 FLOP / 5 (45 -> 5 nm)
        {"pj_per_flop_16bit", "compute", &Activity::flops,
         "picojoules per FP16 matrix FLOP of a PE (Horowitz 45 nm FMA scaled 5x to 5 nm)", "0.15"},
        // assumption: Horowitz 32 KB SRAM 20 pJ per 64-bit read (45 nm) = 2.5 pJ/B, / 1.75 (45 -> 5 nm)
        {"pj_per_sram_byte", "sram", &Activity::memory_bytes,
         "picojoules per PE SRAM byte read or written (Horowitz 32 KB SRAM scaled 1.75x to 5 nm)", "1.43"},
        // assumption: low-swing wire 40.4 fJ/bit/mm / 1.75 x 8 bit x a 0.2 mm hop
        {"pj_per_fabric_byte", "fabric", &Activity::fabric_bytes,
         "picojoules per byte per PE-to-PE hop of the fabric (wire only, assumption: 0.2 mm hop)", "0.037"},
        {"pj_per_pipeline_link_byte", "pipeline_link", &Activity::link_bytes,
         "picojoules per byte between the wafers of a pipeline (assumption: long-reach SerDes 7.5 pJ/bit)",
         "60"}}},
      {"gpu_instance",
       "power model of one GPU instance (p5.48xlarge)",
       "watts one instance draws whatever it does: 8 GPUs idle and the host (assumption, docs/energy.md)",
       // assumption: 8 x 80 W (H100: the H200's idle, same die) + 2,800 W host
       "3440",
       {// assumption: (700 W - 80 W idle - 3.35 TB/s x 31.2 pJ/B) / 989 dense BF16 TFLOPS
        {"pj_per_flop_16bit", "compute", &Activity::flops,
         "picojoules per BF16/FP16 matrix FLOP (GPU power above idle and HBM at full rate over the dense "
         "peak)",
         "0.521"},
        // assumption: the same 515.48 W over 1,979 dense FP8 TFLOPS
        {"pj_per_flop_8bit", "compute", &Activity::flops,
         "picojoules per FP8 matrix FLOP (as the 16-bit one)", "0.260"},
        {"pj_per_hbm_byte", "hbm", &Activity::memory_bytes, "picojoules per HBM byte (HBM3E 3.9 pJ/bit)",
         "31.2"},
        {"pj_per_nvlink_byte", "nvlink", &Activity::link_bytes,
         "picojoules per byte a GPU sends on NVLink (assumption: long-reach SerDes 7.5 pJ/bit)", "60"}}},
  };
  return defaults;
}

bool eight_bit(workloads::DType t) { return t == workloads::DType::fp8 || t == workloads::DType::mxfp4; }

}  // namespace

double PowerModel::joules(double seconds, const Activity& a) const {
  double j = static_cast<double>(count) * static_w * seconds;
  for (const EnergyTerm& t : terms) j += t.pj_per_unit * 1e-12 * (a.*t.units);
  return j;
}

PowerModel read_power_model(config::Section& root, std::string_view kind, std::uint64_t count,
                            workloads::DType matmul) {
  config::Section energy = root.section("energy", "what the machines consume (docs/energy.md)", true);
  for (const ClassDefaults& c : class_defaults()) {
    if (c.kind != kind) continue;
    config::Section s = energy.section(kind, c.doc, true);
    PowerModel p;
    p.kind = std::string(kind);
    p.count = count;
    p.static_w = s.number("static_w", {.doc = c.static_doc, .def = c.static_def, .min = 0});
    // Every key is read (so that check --params lists it); the FLOP term kept is the one
    // of the model's matmul type (a class without an 8-bit figure prices FP8 as 16-bit).
    bool has_8bit = false;
    for (const Coefficient& k : c.terms) has_8bit = has_8bit || k.key == "pj_per_flop_8bit";
    const bool use_8bit = has_8bit && eight_bit(matmul);
    for (const Coefficient& k : c.terms) {
      const double pj = s.number(k.key, {.doc = k.doc, .def = k.def, .min = 0});
      if (k.key == (use_8bit ? "pj_per_flop_16bit" : "pj_per_flop_8bit")) continue;
      p.terms.push_back(EnergyTerm{std::string(k.term), pj, k.units});
    }
    return p;
  }
  throw std::logic_error("no power model for machine kind " + std::string(kind));
}

RunEnergy read_run_energy(config::Section& root, const RunCost& cost,
                          const workloads::TransformerModel& model) {
  RunEnergy e;
  for (const FleetPart& f : cost.fleet)
    e.machines.push_back(read_power_model(root, f.kind, f.count, model.linear_dtype));
  config::Section energy = root.section("energy", "what the machines consume (docs/energy.md)", true);
  config::Section efa = energy.section("efa", "the EFA network carrying KV caches", true);
  // assumption: two long-reach links (adapter to switch, switch to adapter) at 7.5 pJ/bit
  e.efa_pj_per_byte = efa.number(
      "pj_per_byte", {.doc = "picojoules per KV byte delivered over EFA (assumption: two long-reach SerDes "
                             "links at 7.5 pJ/bit; switches and optics not modelled)",
                      .def = "120",
                      .min = 0});
  // "AWS PUE 2024 global 1.15"
  e.pue =
      energy.number("pue", {.doc = "power usage effectiveness: facility energy / IT energy (AWS 2024 global)",
                            .def = "1.15",
                            .min = 1});
  return e;
}

nlohmann::json RunEnergy::summary(double seconds, const std::map<std::string, Activity>& activity,
                                  double efa_bytes, std::uint64_t output_tokens,
                                  std::uint64_t prompt_tokens) const {
  nlohmann::json classes = nlohmann::json::object();
  double it = 0.0;
  for (const PowerModel& p : machines) {
    const auto found = activity.find(p.kind);
    const Activity a = found == activity.end() ? Activity{} : found->second;
    nlohmann::json c = {{"count", p.count},
                        {"static_w", p.static_w},
                        {"static_j", static_cast<double>(p.count) * p.static_w * seconds}};
    for (const EnergyTerm& t : p.terms) c[t.name + "_j"] = t.pj_per_unit * 1e-12 * (a.*t.units);
    const double j = p.joules(seconds, a);
    c["joules"] = j;
    classes[p.kind] = c;
    it += j;
  }
  if (efa_bytes > 0.0) {
    const double j = efa_pj_per_byte * 1e-12 * efa_bytes;
    classes["efa"] = {{"bytes", efa_bytes}, {"joules", j}};
    it += j;
  }
  const double joules = it * pue;
  const auto per_joule = [joules](std::uint64_t tokens) {
    return joules > 0.0 ? static_cast<double>(tokens) / joules : 0.0;
  };
  return nlohmann::json{
      {"machines", classes},
      {"pue", pue},
      {"it_joules", it},
      {"joules", joules},
      {"mean_power_w", seconds > 0.0 ? joules / seconds : 0.0},
      {"tokens_per_joule",
       {{"output", per_joule(output_tokens)}, {"all", per_joule(output_tokens + prompt_tokens)}}}};
}

PassFleet read_pass_fleet(config::Section& root,
                          const std::vector<std::pair<std::string, std::uint64_t>>& fleet,
                          const workloads::TransformerModel& model) {
  PassFleet f;
  for (const auto& [kind, count] : fleet) {
    if (count > 0) f.cost.fleet.push_back(read_fleet_part(root, kind, count));
  }
  f.energy = read_run_energy(root, f.cost, model);
  return f;
}

void PassFleet::summarize(nlohmann::json& s, double seconds, const std::map<std::string, Activity>& activity,
                          double efa_bytes, std::uint64_t output_tokens, std::uint64_t prompt_tokens) const {
  s["cost"] = cost.summary(seconds, output_tokens, prompt_tokens);
  s["energy"] = energy.summary(seconds, activity, efa_bytes, output_tokens, prompt_tokens);
}

}  // namespace wse::experiments
