//! Deciding a grant: the seat count, the options file's rules, per-client
//! limits, the queue and who may overtake it. Part of [`Ledger`]; the
//! entry points (checkout, reclaim, serving the queue) stay in `mod.rs`.

use super::*;

impl Ledger {
    pub(super) fn record_denial(
        &mut self,
        request: &CheckoutRequest,
        refusal: &Refusal,
        roam_days: Option<u32>,
        now: Now,
    ) {
        self.commit(
            Event::Denied(Denial {
                feature: request.feature.as_str().into(),
                version: request.version,
                count: request.count,
                user: Arc::clone(&request.user),
                host: Arc::clone(&request.host),
                code: refusal.code,
                rule: refusal.rule.clone(),
                at: now.unix,
                roam_days,
            }),
            now,
        );
    }

    /// Grants queued checkouts of a feature in order while seats allow.
    /// Strict FIFO: a head that must wait blocks those behind it, so a
    /// large request is never starved by small ones.
    pub(super) fn serve_queue(&mut self, feature: &str, now: Now) {
        while self.gate == Gate::Open {
            let Some(head) = self.queues.get(feature).and_then(|q| q.front()) else {
                break;
            };
            let request = head.request.clone();
            let id = head.id;
            match self.try_grant(&request, None, GrantRules::QueueHead, None, now) {
                Err(r) if matches!(r.code, Code::NoSeats | Code::Reserved) => break,
                result => {
                    if let Some(q) = self.queues.get_mut(feature) {
                        q.pop_front();
                    }
                    self.per_client.dequeued(&request);
                    let (outcome, wait_for) = match result {
                        Ok(grant) => (Outcome::Granted(grant), Some(self.last_seq())),
                        Err(refusal) => {
                            self.record_denial(&request, &refusal, None, now);
                            (Outcome::Denied(refusal), None)
                        }
                    };
                    self.woken.push(Woken {
                        waiter: id,
                        outcome,
                        wait_for,
                    });
                }
            }
        }
        if self.queues.get(feature).is_some_and(|q| q.is_empty()) {
            self.queues.remove(feature);
        }
    }

    /// Decides a grant (a roam when `roam` says so) and, if allowed,
    /// commits it.
    pub(super) fn try_grant(
        &mut self,
        request: &CheckoutRequest,
        reuse_handle: Option<&str>,
        rules: GrantRules,
        roam: Option<&Roam>,
        now: Now,
    ) -> Result<Arc<Grant>, Refusal> {
        let feature = &request.feature;
        let Some(all) = self.by_feature.get(feature) else {
            return Err(Refusal::new(
                Code::NoSuchFeature,
                format!("no licence for feature {feature:?} is served here"),
            ));
        };
        let versioned: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| self.pools[i].pool.key.version >= request.version)
            .collect();
        if versioned.is_empty() {
            let newest = all
                .iter()
                .map(|&i| &self.pools[i].pool.key.version)
                .max()
                .expect("a feature has pools");
            return Err(Refusal::new(
                Code::NoVersion,
                format!(
                    "{feature} {} requested; licences here go up to version {newest}",
                    request.version
                ),
            ));
        }
        let today = now.today();
        let candidates: Vec<usize> = versioned
            .into_iter()
            .filter(|&i| !self.pools[i].pool.key.expiry.is_expired(today))
            .collect();
        if candidates.is_empty() {
            return Err(Refusal::new(
                Code::Expired,
                format!(
                    "every licence for {feature} {} has expired",
                    request.version
                ),
            ));
        }
        // A roam draws only on pools whose licence lets seats roam that
        // long, and whose roamable seats are not all out roaming.
        let candidates = match roam {
            Some(roam) => self.roam_candidates(candidates, request, roam)?,
            None => candidates,
        };
        let who = Requester {
            user: &request.user,
            host: &request.host,
        };
        let empty = FeatureUsage::default();
        let usage = self.usage.get(feature.as_str()).unwrap_or(&empty);
        if rules != GrantRules::Reclaim {
            self.options
                .admit(feature, who, request.count, usage)
                .map_err(|d| Refusal {
                    code: d.code,
                    message: d.message,
                    rule: Some(d.rule),
                })?;
        }
        let largest = candidates
            .iter()
            .map(|&i| self.pools[i].pool.limit().unwrap_or(u64::MAX))
            .max()
            .unwrap_or(0);
        if (request.count as u64) > largest {
            return Err(Refusal::new(
                Code::CountTooLarge,
                format!(
                    "{} seats of {feature} requested; the largest pool has {largest}",
                    request.count
                ),
            ));
        }
        let reserved = if rules == GrantRules::Reclaim {
            0
        } else {
            self.options.reserved_for_others(feature, who, usage)
        };
        let feature_free: u64 = all
            .iter()
            .map(|&i| self.pools[i].free())
            .fold(0u64, |a, b| a.saturating_add(b));
        let waiting = self.queue_len(feature);
        // A seat granted unseen by the other server of a split pair.
        let past_count = rules == GrantRules::Reclaim
            && self.reclaims_past_count
            && reuse_handle.is_some_and(|h| !self.returned.seen(h, now.mono));
        let mut blocked_by_reservation = false;
        let mut chosen = None;
        for &i in &candidates {
            let p = &self.pools[i];
            // A roam takes seats of its own: they leave with the machine.
            let key = match roam {
                Some(_) => None,
                None => p.share_key(&request.user, &request.host),
            };
            let needed = p.needed(request.count, key.as_deref());
            if needed == 0 {
                chosen = Some(i);
                break;
            }
            if rules == GrantRules::Checkout && waiting > 0 && !self.may_overtake(request, needed) {
                continue;
            }
            if p.free() >= needed || past_count {
                if past_count || feature_free.saturating_sub(needed) >= reserved {
                    chosen = Some(i);
                    break;
                }
                blocked_by_reservation = true;
            }
        }
        let Some(pool) = chosen else {
            if blocked_by_reservation {
                let usage = self.usage.get(feature.as_str()).unwrap_or(&empty);
                let rule = self.options.reserving_rule(feature, who, usage);
                let cited = rule.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                return Err(Refusal {
                    rule,
                    ..Refusal::new(
                        Code::Reserved,
                        format!("the free seats of {feature} are reserved for others{cited}"),
                    )
                });
            }
            let message = if rules == GrantRules::Checkout && waiting > 0 {
                format!(
                    "all seats of {feature} are in use or promised to {waiting} waiting client(s)"
                )
            } else {
                format!("all seats of {feature} are in use")
            };
            return Err(Refusal::new(Code::NoSeats, message));
        };
        let pool_state = &self.pools[pool];
        let handle: Name = match reuse_handle {
            Some(h) => h.into(),
            None => {
                let mut id = [0u8; HANDLE_ID_BYTES];
                self.entropy.fill(&mut id).map_err(|e| {
                    Refusal::new(Code::Internal, format!("no randomness for a handle: {e}"))
                })?;
                let version = request.version.to_string();
                self.handle_key
                    .issue(
                        id,
                        &HandleClaim {
                            feature,
                            version: &version,
                            count: request.count,
                            user: &request.user,
                            host: &request.host,
                            client: &request.client,
                        },
                    )
                    .into()
            }
        };
        let grant = Arc::new(Grant {
            handle,
            feature: Arc::clone(&pool_state.pool.key.feature),
            version: request.version,
            pool: pool_state.pool.key.clone(),
            count: request.count,
            user: Arc::clone(&request.user),
            host: Arc::clone(&request.host),
            client: Arc::clone(&request.client),
            lease_ms: match roam {
                Some(_) => 0,
                None => self.lease.as_millis() as u64,
            },
            min_hold_ms: match roam {
                Some(_) => 0,
                None => pool_state.pool.min_checkout_secs as u64 * 1000,
            },
            at: now.unix,
            roam: roam.cloned().map(Box::new),
        });
        self.commit(Event::Grant(Arc::clone(&grant)), now);
        Ok(grant)
    }

    /// Whether a new checkout may take `needed` seats while others wait:
    /// only seats held back by reservations for it that no waiter could
    /// have used (`Options::may_overtake`).
    pub(super) fn may_overtake(&self, request: &CheckoutRequest, needed: u64) -> bool {
        let empty = FeatureUsage::default();
        let usage = self.usage.get(request.feature.as_str()).unwrap_or(&empty);
        let waiters = self.queues.get(&request.feature).into_iter().flatten();
        self.options.may_overtake(
            &request.feature,
            Requester {
                user: &request.user,
                host: &request.host,
            },
            request.count,
            needed,
            usage,
            waiters.map(|w| Requester {
                user: &w.request.user,
                host: &w.request.host,
            }),
        )
    }
}

/// The share key a seat is charged under: none for a roam, which always
/// takes seats of its own.
pub(super) fn charge_key(pool: &PoolState, grant: &Grant) -> Option<String> {
    match grant.roam {
        Some(_) => None,
        None => pool.share_key(&grant.user, &grant.host),
    }
}

/// Which rules a grant is decided under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GrantRules {
    /// A new checkout: options apply, and it may not overtake the queue.
    Checkout,
    /// The head of the queue being served.
    QueueHead,
    /// A proven handle coming back: only the seat count applies.
    Reclaim,
}
