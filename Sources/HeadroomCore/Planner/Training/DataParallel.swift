// Data-parallel training across devices: the link a ring of devices runs at (the node's interconnect,
// or the network between nodes), and what each step pays to communicate — the gradient all-reduce,
// and under ZeRO-3 the parameter all-gathers and the gradient reduce-scatter — so adding devices
// never scales the hours down linearly.
import Foundation

public enum DataParallel {
    /// The link a ring over `devices` devices runs at: inside one node the node's interconnect; across
    /// nodes the slower of that and the network (one NIC per device, as in a DGX), at the larger latency.
    /// nil when the devices span nodes and the catalog states no network (the plan does not apply).
    public static func link(_ h: HardwareProfile, devices: Int) -> Interconnect? {
        if devices <= h.devicesPerNode { return h.interconnect }
        guard let net = h.network else { return nil }
        return Interconnect(kind: "\(h.interconnect.kind) + \(net.kind)",
                            bandwidthGbps: min(h.interconnect.bandwidthGbps, net.bandwidthGbps),
                            latencyUs: max(h.interconnect.latencyUs, net.latencyUs))
    }

    /// Ring all-gather (or reduce-scatter) of a tensor of `bytes` in all over `n` devices: (n − 1)/n of it
    /// crosses each link in one direction (half the vendor's two-way figure), in n − 1 latency steps.
    public static func allGatherSeconds(bytes: Double, devices n: Int, link: Interconnect) -> Double {
        guard n > 1 else { return 0 }
        let d = Double(n)
        return (d - 1) / d * bytes / (link.bandwidthGbps * 1e9 / 2) + (d - 1) * link.latencyUs * 1e-6
    }

    /// Communication of one optimizer step on `devices` devices, seconds, not overlapped with compute.
    /// ZeRO 0 (plain data parallelism): one ring all-reduce of the gradients, 2(n − 1)/n × `gradientBytes`
    /// (`PerformanceModel.allReduceTime`); ZeRO 1 and 2 move the same bytes (a reduce-scatter of the
    /// gradients and an all-gather of the updated parameters). ZeRO 3: the parameters (`parameterBytes`, all of them, as
    /// stored) are all-gathered for the forward and again for the backward, and the gradients
    /// reduce-scattered — 3 × (n − 1)/n of the model's bytes when every parameter trains, 1.5× plain
    /// data parallelism (Rajbhandari et al., ZeRO, 2020, §7.2.2).
    public static func stepSeconds(gradientBytes: Double, parameterBytes: Double, devices: Int, zeroStage: Int,
                                   link: Interconnect) -> Double {
        guard devices > 1 else { return 0 }
        if zeroStage >= 3 {
            return 2 * allGatherSeconds(bytes: parameterBytes, devices: devices, link: link)
                + allGatherSeconds(bytes: gradientBytes, devices: devices, link: link)
        }
        return PerformanceModel.allReduceTime(bytes: gradientBytes, tp: devices, interconnect: link)
    }
}
