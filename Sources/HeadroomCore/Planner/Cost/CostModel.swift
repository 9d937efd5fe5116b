// Cost: a replica count and a price sheet become monthly costs (always-on, autoscaled), $ per million
// output tokens, and the break-even month of buying instead of renting.
import Foundation

/// What a configuration costs per month.
public struct CostEstimate: Codable, Equatable, Sendable {
    public var provider: String
    public var pricing: String
    public var instanceDevices: Int
    public var instanceUSDPerHour: Double
    /// Enough instances for the peak, all month.
    public var alwaysOnUSD: Double
    /// Instances following the hourly profile, never fewer than the minimum replica count.
    public var autoscaledUSD: Double
    public var usdPerMillionOutputTokens: Double
    public var offerSource: String
    /// Buying instead of renting (nil when the sheet has no purchase price for this hardware).
    public var onPrem: OnPremEstimate?
}

public struct OnPremEstimate: Codable, Equatable, Sendable {
    public var devices: Int
    public var purchaseUSD: Double
    public var powerUSDPerMonth: Double
    /// Purchase over the amortisation period plus power.
    public var monthlyUSD: Double
    public var amortisationMonths: Double
    /// Months after which owning has cost less than renting always-on (nil when renting is cheaper than power alone).
    public var breakEvenMonths: Double?
}

public enum CostModel {
    /// Instances needed to host `replicas` replicas of `devicesPerReplica` devices.
    public static func instances(replicas: Int, devicesPerReplica: Int, instance: PriceSheet.Instance) -> Int {
        let perInstance = max(1, instance.replicas(devicesPerReplica: devicesPerReplica))
        return (replicas + perInstance - 1) / perInstance
    }

    /// Monthly cost of serving `demand` with replicas of capacity `capacityRPS` each.
    public static func estimate(demand: Demand, capacityRPS: Double, replicas: Int, minReplicas: Int, devicesPerReplica: Int,
                                hardware: HardwareProfile, sheet: PriceSheet, mode: PricingMode) -> CostEstimate? {
        guard capacityRPS > 0, let instance = sheet.bestInstance(hardware: hardware.id, devicesPerReplica: devicesPerReplica, mode: mode)
        else { return nil }
        let offer = instance.offer, rate = instance.usdPerHour
        let alwaysOn = Double(instances(replicas: replicas, devicesPerReplica: devicesPerReplica, instance: instance)) * rate * sheet.hoursPerMonth
        var autoscaled = 0.0
        for piece in demand.hourly {
            // At most the peak's replicas, which the planner has already checked against PlanLimits.replicas.
            guard let hourly = Int(checking: piece.rps / capacityRPS, rounding: .up, within: 0...PlanLimits.replicas) else { return nil }
            let need = max(minReplicas, hourly)
            autoscaled += Double(instances(replicas: need, devicesPerReplica: devicesPerReplica, instance: instance)) * rate
                * piece.hours * sheet.hoursPerMonth / 24
        }
        let tokens = demand.outputTokensPerMonth(hoursPerMonth: sheet.hoursPerMonth)
        var onPrem: OnPremEstimate?
        if let owned = sheet.onPremEntry(hardware: hardware.id) {
            let devices = replicas * devicesPerReplica
            let purchase = Double(devices) * owned.purchaseUSDPerDevice
            let power = Double(devices) * hardware.powerWatts / 1000 * sheet.pue * sheet.hoursPerMonth * sheet.usdPerKWh
            let saving = alwaysOn - power
            onPrem = OnPremEstimate(devices: devices, purchaseUSD: purchase, powerUSDPerMonth: power,
                                    monthlyUSD: purchase / sheet.amortisationMonths + power,
                                    amortisationMonths: sheet.amortisationMonths,
                                    breakEvenMonths: saving > 0 ? purchase / saving : nil)
        }
        return CostEstimate(provider: offer.provider, pricing: mode.rawValue, instanceDevices: instance.devices, instanceUSDPerHour: rate,
                            alwaysOnUSD: alwaysOn, autoscaledUSD: autoscaled,
                            usdPerMillionOutputTokens: tokens > 0 ? autoscaled / (tokens / 1e6) : .infinity,
                            offerSource: offer.source, onPrem: onPrem)
    }
}
