package product

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// The adoption score's parts: recency up to 40 points (full within a week of the last use, none
// after a month), breadth up to 30 (features used in the last month of those the customer's
// products give), seat utilisation up to 30 (distinct users this month per seat).
const (
	recencyPoints = 40
	breadthPoints = 30
	seatPoints    = 30
	freshFor      = 7 * 24 * time.Hour
	staleAfter    = 30 * 24 * time.Hour
	healthyFrom   = 70
	attentionFrom = 40
)

// assess computes a customer's adoption from its counters, in integers.
func assess(customerID string, in AdoptionInputs, owned []*Product, now time.Time) *productv1.Adoption {
	a := &productv1.Adoption{CustomerId: customerID, Seats: in.Seats, ActiveUsers: in.Users}
	var last time.Time
	for _, t := range in.LastUsed {
		if t.After(last) {
			last = t
		}
	}
	if !last.IsZero() {
		a.LastUsageTime = timestamppb.New(last)
	}
	available := map[string]bool{}
	for _, p := range owned {
		for _, f := range p.GetFeatures() {
			available[f] = true
		}
	}
	a.FeaturesAvailable = int32(len(available))
	for f := range available {
		if t, ok := in.LastUsed[f]; ok && now.Sub(t) <= staleAfter {
			a.FeaturesUsed++
		}
	}
	score := int64(0)
	if !last.IsZero() {
		switch age := now.Sub(last); {
		case age <= freshFor:
			score += recencyPoints
		case age < staleAfter:
			score += int64(recencyPoints * (staleAfter - age) / (staleAfter - freshFor))
		}
	}
	if a.FeaturesAvailable > 0 {
		score += int64(breadthPoints * a.FeaturesUsed / a.FeaturesAvailable)
	}
	if in.Seats > 0 {
		score += seatPoints * min(in.Users, in.Seats) / in.Seats
	}
	a.Score = int32(score)
	a.Band = band(a.Score)
	return a
}

// settledAfter is how long after the last use nothing in a score moves any more: recency and
// breadth are gone after staleAfter (30 days), and within 31 days a month boundary has reset the
// users; a day more for margin.
const settledAfter = 32 * 24 * time.Hour

// nextRescore is when to score a customer again without usage: daily while the score can still
// fall, never (zero) once it has settled.
func nextRescore(lastUsed map[string]time.Time, now time.Time) time.Time {
	var last time.Time
	for _, t := range lastUsed {
		if t.After(last) {
			last = t
		}
	}
	if last.IsZero() || now.Sub(last) > settledAfter {
		return time.Time{}
	}
	return now.Add(24 * time.Hour)
}

func band(score int32) productv1.AdoptionBand {
	switch {
	case score >= healthyFrom:
		return productv1.AdoptionBand_ADOPTION_BAND_HEALTHY
	case score >= attentionFrom:
		return productv1.AdoptionBand_ADOPTION_BAND_NEEDS_ATTENTION
	}
	return productv1.AdoptionBand_ADOPTION_BAND_AT_RISK
}
