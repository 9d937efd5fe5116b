// What hardware costs: cloud offers priced per instance (on-demand, spot, committed), and
// on-premises ownership (purchase spread over an amortisation period, plus power). Read strictly.
import Foundation

/// Which hourly rate a plan pays.
public enum PricingMode: String, Codable, Sendable, CaseIterable {
    case onDemand = "on_demand", spot, committed
}

public struct PriceSheet: Codable, Equatable, Sendable {
    /// One rentable instance: `devices` devices of one hardware kind at hourly rates.
    public struct Offer: Codable, Equatable, Sendable {
        public var hardware: String
        public var provider: String
        public var devices: Int
        /// The provider also rents multiples of `devices` in one instance, up to this many, at the same
        /// rate per device (nil: only `devices`).
        public var maxDevices: Int?
        public var onDemandUSDPerHour: Double
        public var spotUSDPerHour: Double?
        public var committedUSDPerHour: Double?
        public var source: String

        public init(hardware: String, provider: String, devices: Int, maxDevices: Int? = nil, onDemandUSDPerHour: Double,
                    spotUSDPerHour: Double? = nil, committedUSDPerHour: Double? = nil, source: String) {
            self.hardware = hardware; self.provider = provider; self.devices = devices; self.maxDevices = maxDevices
            self.onDemandUSDPerHour = onDemandUSDPerHour; self.spotUSDPerHour = spotUSDPerHour
            self.committedUSDPerHour = committedUSDPerHour; self.source = source
        }

        public func rate(_ mode: PricingMode) -> Double? {
            switch mode {
            case .onDemand: return onDemandUSDPerHour
            case .spot: return spotUSDPerHour
            case .committed: return committedUSDPerHour
            }
        }
    }

    public struct OnPrem: Codable, Equatable, Sendable {
        public var hardware: String
        public var purchaseUSDPerDevice: Double
        public var source: String
        public init(hardware: String, purchaseUSDPerDevice: Double, source: String) {
            self.hardware = hardware; self.purchaseUSDPerDevice = purchaseUSDPerDevice; self.source = source
        }
    }

    public var file: String
    public var hoursPerMonth: Double
    public var pricing: PricingMode
    public var amortisationMonths: Double
    public var usdPerKWh: Double
    public var pue: Double
    public var powerSource: String
    public var offers: [Offer]
    public var onPrem: [OnPrem]

    public init(file: String, hoursPerMonth: Double = 730, pricing: PricingMode = .onDemand, amortisationMonths: Double = 36,
                usdPerKWh: Double = 0.13, pue: Double = 1.3, powerSource: String = "", offers: [Offer], onPrem: [OnPrem] = []) {
        self.file = file; self.hoursPerMonth = hoursPerMonth; self.pricing = pricing
        self.amortisationMonths = amortisationMonths; self.usdPerKWh = usdPerKWh; self.pue = pue
        self.powerSource = powerSource; self.offers = offers; self.onPrem = onPrem
    }

    /// An instance as rented: the offer, how many devices, and its hourly rate.
    public struct Instance: Equatable, Sendable {
        public var offer: Offer
        public var devices: Int
        public var usdPerHour: Double
        public func replicas(devicesPerReplica: Int) -> Int { devices / devicesPerReplica }
    }

    /// The instance that hosts `devicesPerReplica`-device replicas most cheaply per replica-hour under
    /// `mode`: the smallest size the offer rents that holds one whole replica (replicas do not span instances).
    public func bestInstance(hardware: String, devicesPerReplica: Int, mode: PricingMode) -> Instance? {
        var best: Instance?
        for o in offers where o.hardware == hardware {
            guard let rate = o.rate(mode) else { continue }
            let multiples = (devicesPerReplica + o.devices - 1) / o.devices
            let size = multiples * o.devices
            guard size <= max(o.devices, o.maxDevices ?? o.devices) else { continue }
            let candidate = Instance(offer: o, devices: size, usdPerHour: rate * Double(multiples))
            let perReplica = candidate.usdPerHour / Double(candidate.replicas(devicesPerReplica: devicesPerReplica))
            if let b = best, b.usdPerHour / Double(b.replicas(devicesPerReplica: devicesPerReplica)) <= perReplica { continue }
            best = candidate
        }
        return best
    }

    /// The cheapest hourly cost of `devices` devices for a job that may span instances (data-parallel
    /// training), with the offer used.
    public func hourly(hardware: String, devices: Int, mode: PricingMode) -> (usd: Double, offer: Offer)? {
        offers.filter { $0.hardware == hardware && $0.rate(mode) != nil }
            .map { (Double((devices + $0.devices - 1) / $0.devices) * $0.rate(mode)!, $0) }
            .min { $0.0 < $1.0 }
    }

    public func onPremEntry(hardware: String) -> OnPrem? { onPrem.first { $0.hardware == hardware } }

    // MARK: loading

    /// Reads a sheet; every `hardware:` must name a profile in `hardware` (when that list is not empty).
    public static func load(_ file: String, hardware: [HardwareProfile]) throws -> PriceSheet {
        try read(YAMLField.load(file), file: file, hardware: hardware)
    }

    static let topLevelKeys = ["schema", "currency", "hours_per_month", "pricing", "amortisation_months", "power", "offers", "on_prem"]

    /// Applies an override sheet entry by entry: its offers replace those of the same hardware, provider and
    /// instance size and add the others; its on-premises entries replace those of the same hardware; the
    /// settings it states (`stated`: the override's top-level keys) replace this sheet's.
    mutating func merge(_ other: PriceSheet, stated: YAMLMapping) {
        for o in other.offers {
            if let i = offers.firstIndex(where: { $0.hardware == o.hardware && $0.provider == o.provider && $0.devices == o.devices }) {
                offers[i] = o
            } else {
                offers.append(o)
            }
        }
        for o in other.onPrem {
            if let i = onPrem.firstIndex(where: { $0.hardware == o.hardware }) { onPrem[i] = o } else { onPrem.append(o) }
        }
        if stated.has("hours_per_month") { hoursPerMonth = other.hoursPerMonth }
        if stated.has("pricing") { pricing = other.pricing }
        if stated.has("amortisation_months") { amortisationMonths = other.amortisationMonths }
        if stated.has("power") { usdPerKWh = other.usdPerKWh; pue = other.pue; powerSource = other.powerSource }
        file = other.file
    }

    /// Reads a prices.yaml document; every `hardware:` must name a profile in `hardware` (when that list is not empty).
    static func read(_ doc: YAMLField, file: String, hardware: [HardwareProfile]) throws -> PriceSheet {
        let root = try doc.mapping(allowed: topLevelKeys)
        let schema = try root.required("schema")
        guard try schema.int(min: 1, max: Int.max) == 1 else { throw schema.fail("schema version 1") }
        if let c = root.optional("currency") { _ = try c.oneOf(["USD"]) }
        let known = hardware.map(\.id)
        func hardwareID(_ f: YAMLField) throws -> String {
            let id = try f.string()
            if !known.isEmpty && !known.contains(id) { throw f.fail("hardware in the catalog (\(known.joined(separator: ", ")))") }
            return id
        }
        var sheet = PriceSheet(file: file, offers: [])
        if let f = root.optional("hours_per_month") { sheet.hoursPerMonth = try f.double(min: PriceLimits.hoursPerMonthMin, max: PriceLimits.hoursPerMonth) }
        if let f = root.optional("pricing") { sheet.pricing = PricingMode(rawValue: try f.oneOf(PricingMode.allCases.map(\.rawValue)))! }
        if let f = root.optional("amortisation_months") { sheet.amortisationMonths = try f.double(min: PriceLimits.amortisationMonthsMin, max: PriceLimits.amortisationMonths) }
        if let p = root.optional("power") {
            let m = try p.mapping(allowed: ["usd_per_kwh", "pue", "source"])
            sheet.usdPerKWh = try m.required("usd_per_kwh").double(min: 0, max: PriceLimits.usdPerKWh)
            sheet.pue = try m.optional("pue")?.double(min: 1, max: PriceLimits.pue) ?? 1
            sheet.powerSource = try m.required("source").string()
        }
        sheet.offers = try root.required("offers").list { f -> Offer in
            let m = try f.mapping(allowed: ["hardware", "provider", "devices", "max_devices", "on_demand_usd_per_hour", "spot_usd_per_hour",
                                            "committed_usd_per_hour", "source"])
            let devices = try m.required("devices").int(min: 1, max: 1024)
            var offer = Offer(hardware: try hardwareID(m.required("hardware")), provider: try m.required("provider").string(),
                         devices: devices,
                         onDemandUSDPerHour: try m.required("on_demand_usd_per_hour").double(min: 0, exclusiveMin: true, max: PriceLimits.usdPerHour),
                         spotUSDPerHour: try m.optional("spot_usd_per_hour")?.double(min: 0, exclusiveMin: true, max: PriceLimits.usdPerHour),
                         committedUSDPerHour: try m.optional("committed_usd_per_hour")?.double(min: 0, exclusiveMin: true, max: PriceLimits.usdPerHour),
                         source: try m.required("source").string())
            if let mf = m.optional("max_devices") {
                let mx = try mf.int(min: devices, max: 1024)
                if mx % devices != 0 { throw mf.fail("a multiple of devices (\(devices))") }
                offer.maxDevices = mx
            }
            return offer
        }
        if let f = root.optional("on_prem") {
            sheet.onPrem = try f.list(nonEmpty: false) { f -> OnPrem in
                let m = try f.mapping(allowed: ["hardware", "purchase_usd_per_device", "source"])
                return OnPrem(hardware: try hardwareID(m.required("hardware")),
                              purchaseUSDPerDevice: try m.required("purchase_usd_per_device").double(min: 0, exclusiveMin: true, max: PriceLimits.purchaseUSD),
                              source: try m.required("source").string())
            }
        }
        return sheet
    }
}
