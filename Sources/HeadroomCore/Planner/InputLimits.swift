// The largest (and, for divisors, smallest) numbers a plan, the catalog and a price sheet accept.
// Each bound is far beyond anything real, and tight enough that every product the planner forms from
// them stays finite and every count it converts to Int stays far from overflow. The readers state the
// bound in their message (`expected an integer from 1 to 1000000000000, got 9223372036854775807`).
//
// Worst case with every input at its bound: requests per day ≤ 1e12 users × 1e6 = 1e18; peak rate
// ≤ 1e18 × 1000 / 86 400 ≈ 1.2e16 req/s; output tokens per month ≤ 1e18 × 31 × 1e7 ≈ 3e26; parameters
// ≤ 1000 layers × 1e5 experts × 3 × 1e6 × 1e7 = 3e21; training FLOPs ≤ 6 × 3e21 × 1e16 ≈ 2e38 (fine-tuning
// ≤ 1e12 documents × 1e7 tokens × 1000 epochs × ~1e23 FLOPs a token = 1e45); monthly cost ≤ 1e9 replicas
// × 8 devices' instance at $1e7/hour × 744 hours ≈ 6e19 — all far below Double's 1.8e308. The counts
// that become Int (replicas, devices, batch) are checked against `PlanLimits.replicas` and
// `PlanLimits.devices` where they are computed, so a plan too large for them is answered ("needs more
// than …"), never trapped.

/// Bounds of the scenario's `plan:` section (and so of `whatif`'s flags and `--set`).
public enum PlanLimits {
    /// 1e12 users: over a hundred times the world's population.
    public static let users = 1_000_000_000_000
    /// A million requests per user per day: one every 0.09 s, all day.
    public static let requestsPerUserPerDay = 1e6
    /// The peak hour at 1000 × the day's mean rate (all of a day's traffic in 1.4 minutes).
    public static let peakToMean = 1000.0
    /// Relative hourly weights: any scale up to 1e12 (24 of them sum to a finite number).
    public static let hourlyWeight = 1e12
    /// Ten million tokens in one prompt or one answer; the model's context bounds them further.
    public static let tokensPerRequest = 10_000_000
    /// An SLO of a day (86 400 000 ms) is no longer a latency objective.
    public static let sloMs = 86_400_000.0
    /// Fine-tuning: a trillion documents, a thousand epochs.
    public static let documents = 1_000_000_000_000
    public static let epochs = 1000.0
    /// A fine-tuning deadline: from 36 seconds (0.01 h) to a century (876,000 h).
    public static let deadlineHoursMin = 0.01
    public static let deadlineHours = 876_000.0
    /// Training tokens: 1e16, several hundred times the largest published pre-training runs (~3e13).
    public static let trainingTokens = 1e16
    /// Training days: from about a minute and a half (0.001 days: a divisor) to a century.
    public static let trainingDaysMin = 0.001
    public static let trainingDays = 36_500.0
    /// Replicas the planner considers for one configuration: beyond a billion the candidate is answered
    /// "needs more than …" instead of sized.
    public static let replicas = 1_000_000_000
    /// Devices of a training plan, on the same terms.
    public static let devices = 1_000_000_000
}

/// Bounds of the catalog (`models.yaml`, `hardware.yaml`): published figures are orders of magnitude below.
public enum CatalogLimits {
    public static let layers = 1000
    public static let dim = 1_000_000
    public static let ffnDim = 10_000_000
    public static let vocab = 10_000_000
    /// Tokens of context: 1e8 (the longest published is 1e7).
    public static let context = 100_000_000
    public static let experts = 100_000
    public static let ropeTheta = 1e12
    public static let normEps = 1.0
    public static let publishedParams = 1e15
    /// Dense peak per dtype, TFLOP/s: from 1 GFLOP/s (a divisor) to 1 EFLOP/s per device.
    public static let peakTflopsMin = 0.001
    public static let peakTflops = 1e6
    /// Device memory: up to 1 PiB.
    public static let memoryGib = 1e6
    /// Memory and interconnect bandwidth, GB/s: from 1 MB/s (a divisor) to 10 PB/s.
    public static let bandwidthGbpsMin = 0.001
    public static let bandwidthGbps = 1e7
    /// Per collective step: up to a second.
    public static let latencyUs = 1e6
    /// Per device: up to a megawatt.
    public static let powerWatts = 1e6
    /// Efficiencies and MFU are fractions; below 0.1 % a device is not worth planning on (and they divide).
    public static let fractionMin = 0.001
}

/// Bounds of a price sheet (`prices.yaml`, `--prices`).
public enum PriceLimits {
    /// An instance at up to ten million dollars an hour.
    public static let usdPerHour = 1e7
    /// A device bought for up to a billion dollars.
    public static let purchaseUSD = 1e9
    /// Hours in a month: from 1 (a divisor) to 744 (31 days).
    public static let hoursPerMonthMin = 1.0
    public static let hoursPerMonth = 744.0
    /// Amortisation: from one month (a divisor) to a century.
    public static let amortisationMonthsMin = 1.0
    public static let amortisationMonths = 1200.0
    public static let usdPerKWh = 1000.0
    /// Power usage effectiveness: 1 (no overhead) to 10.
    public static let pue = 10.0
}
