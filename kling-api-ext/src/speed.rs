//! What a client learns for its waits: how fast generation runs.

use std::sync::Mutex;
use std::time::Duration;

/// What a client learned about generation speed: seconds of generation per
/// second of audio, from the tasks it waited for (the median of the last 32,
/// once there are 3). Each [`Client`](crate::Client) keeps one; it is public so that code
/// which tracks tasks itself can use the same estimate.
#[derive(Debug, Default)]
pub struct DurationModel {
    ratios: Mutex<Vec<f64>>,
    /// Learned by this client's own waits and not yet taken ([`DurationModel::take_learned`]).
    fresh: Mutex<Vec<f64>>,
}

impl DurationModel {
    const KEEP: usize = 32;
    const MIN_SAMPLES: usize = 3;

    /// Records that `audio` of audio took `generation` to generate.
    pub fn learn(&self, audio: Duration, generation: Duration) {
        if audio.is_zero() || generation.is_zero() {
            return;
        }
        let ratio = generation.as_secs_f64() / audio.as_secs_f64();
        let mut ratios = self.ratios.lock().unwrap_or_else(|p| p.into_inner());
        ratios.push(ratio);
        if ratios.len() > Self::KEEP {
            ratios.remove(0);
        }
        drop(ratios);
        let mut fresh = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
        fresh.push(ratio);
        let excess = fresh.len().saturating_sub(Self::KEEP);
        fresh.drain(..excess);
    }

    /// The samples this client's own waits learned since the last call (at
    /// most the last 32), not those given with
    /// [`extend_samples`](Self::extend_samples): what to share with other
    /// processes, so that each sample is shared once.
    ///
    /// ```
    /// use std::time::Duration;
    /// let model = kling_api_ext::wait::DurationModel::default();
    /// model.extend_samples([2.0]);
    /// model.learn(Duration::from_secs(10), Duration::from_secs(30));
    /// assert_eq!(model.take_learned(), vec![3.0]);
    /// assert!(model.take_learned().is_empty());
    /// ```
    pub fn take_learned(&self) -> Vec<f64> {
        std::mem::take(&mut *self.fresh.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// What has been learned, oldest first (seconds of generation per second of
    /// audio): to keep between runs and give back with
    /// [`extend_samples`](Self::extend_samples), so that a process that waits
    /// for one task polls as well as one that has waited for many.
    pub fn samples(&self) -> Vec<f64> {
        self.ratios
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds samples learned earlier (see [`samples`](Self::samples)). Values
    /// that are not finite or not between 0.01 and 1000 are ignored: a damaged
    /// file cannot make a wait poll absurdly.
    pub fn extend_samples(&self, samples: impl IntoIterator<Item = f64>) {
        let mut ratios = self.ratios.lock().unwrap_or_else(|p| p.into_inner());
        ratios.extend(
            samples
                .into_iter()
                .filter(|r| r.is_finite() && (0.01..=1000.0).contains(r)),
        );
        let excess = ratios.len().saturating_sub(Self::KEEP);
        ratios.drain(..excess);
    }

    /// The shortest and longest generation times seen, scaled to `audio` of
    /// audio, once learned: where a task is likely to end.
    pub fn expected_generation_range(&self, audio: Duration) -> Option<(Duration, Duration)> {
        let ratios = self.ratios.lock().unwrap_or_else(|p| p.into_inner());
        if ratios.len() < Self::MIN_SAMPLES {
            return None;
        }
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        let at = |ratio: f64| Duration::try_from_secs_f64(audio.as_secs_f64() * ratio).ok();
        Some((at(low)?, at(high)?))
    }

    /// The expected generation time for `audio` of audio, once learned.
    pub fn expected_generation(&self, audio: Duration) -> Option<Duration> {
        let ratios = self.ratios.lock().unwrap_or_else(|p| p.into_inner());
        if ratios.len() < Self::MIN_SAMPLES {
            return None;
        }
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        Duration::try_from_secs_f64(audio.as_secs_f64() * sorted[sorted.len() / 2]).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_duration_model_gives_the_range_it_saw() {
        let model = DurationModel::default();
        let secs = Duration::from_secs;
        model.learn(secs(10), secs(40));
        model.learn(secs(10), secs(60));
        assert_eq!(model.expected_generation_range(secs(20)), None);
        model.learn(secs(10), secs(45));
        assert_eq!(
            model.expected_generation_range(secs(20)),
            Some((secs(80), secs(120)))
        );
    }

    #[test]
    fn the_duration_model_needs_three_samples_and_takes_the_median() {
        let model = DurationModel::default();
        let secs = Duration::from_secs;
        model.learn(secs(10), secs(40));
        model.learn(secs(20), secs(100));
        assert_eq!(model.expected_generation(secs(30)), None);
        model.learn(secs(10), secs(45));
        // Ratios 4, 5, 4.5: median 4.5.
        assert_eq!(model.expected_generation(secs(30)), Some(secs(135)));
    }

    #[test]
    fn samples_round_trip_and_damaged_ones_are_dropped() {
        let secs = Duration::from_secs;
        let earlier = DurationModel::default();
        earlier.learn(secs(10), secs(40));
        earlier.learn(secs(10), secs(50));
        earlier.learn(secs(10), secs(45));
        let later = DurationModel::default();
        later.extend_samples(earlier.samples().into_iter().chain([
            f64::NAN,
            f64::INFINITY,
            -1.0,
            0.0,
            1e9,
        ]));
        assert_eq!(later.samples(), [4.0, 5.0, 4.5]);
        assert_eq!(later.expected_generation(secs(30)), Some(secs(135)));
        // At most the last 32 are kept.
        later.extend_samples((0..100).map(|i| 1.0 + f64::from(i)));
        let kept = later.samples();
        assert_eq!(kept.len(), 32);
        assert_eq!(kept[31], 100.0);
    }
}
