// Demand: users and their habits become peak requests per second and tokens per month.
import Foundation

/// Who uses the model and how.
public struct Demand: Codable, Equatable, Sendable {
    public var users: Int
    public var requestsPerUserPerDay: Double
    /// Peak hour's rate over the day's mean rate; ignored when `hourlyProfile` is given.
    public var peakToMean: Double
    /// 24 relative weights, one per hour of the day (any scale).
    public var hourlyProfile: [Double]?
    public var promptTokens: Int
    public var outputTokens: Int

    public init(users: Int, requestsPerUserPerDay: Double, peakToMean: Double = 1, hourlyProfile: [Double]? = nil,
                promptTokens: Int, outputTokens: Int) {
        self.users = users; self.requestsPerUserPerDay = requestsPerUserPerDay; self.peakToMean = peakToMean
        self.hourlyProfile = hourlyProfile; self.promptTokens = promptTokens; self.outputTokens = outputTokens
    }

    public var requestsPerDay: Double { Double(users) * requestsPerUserPerDay }
    public var meanRequestsPerSecond: Double { requestsPerDay / 86_400 }

    /// The request rate in each hour of the day. Without a profile: a square wave that keeps the day's
    /// total — the peak rate for 24/peak_to_mean hours, nothing the rest of the day (give
    /// `hourly_profile` for a real shape). Returned as (hours, rate) pieces.
    public var hourly: [(hours: Double, rps: Double)] {
        if let profile = hourlyProfile {
            let sum = profile.reduce(0, +)
            return profile.map { (1, sum > 0 ? requestsPerDay * $0 / sum / 3600 : 0) }
        }
        let peakHours = 24 / peakToMean
        return [(peakHours, peakRequestsPerSecond), (24 - peakHours, 0)]
    }

    public var peakRequestsPerSecond: Double {
        if let profile = hourlyProfile {
            let sum = profile.reduce(0, +)
            return sum > 0 ? requestsPerDay * (profile.max() ?? 0) / sum / 3600 : 0
        }
        return meanRequestsPerSecond * peakToMean
    }

    public func outputTokensPerMonth(hoursPerMonth: Double) -> Double {
        requestsPerDay * hoursPerMonth / 24 * Double(outputTokens)
    }

    public func promptTokensPerMonth(hoursPerMonth: Double) -> Double {
        requestsPerDay * hoursPerMonth / 24 * Double(promptTokens)
    }
}
