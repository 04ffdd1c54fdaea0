// Alerts that tell an operator when the mirror stops or fails, read from the app's own log lines in
// Application Insights (`traces`; each line is the JSON the app writes, with an `event` field):
// - the schedule stopped: no `schedule.ran` within twice its interval, or an invocation logged
//   `schedule.overdue` (on Flex Consumption a timer can stop firing while HTTP keeps answering);
// - a job failed for good or was poisoned: `job.failed`, `poison.no-job`, `poison.bad-message`.
// Both notify one action group, which e-mails `alertEmail` when it is set and nobody otherwise (the
// alerts still show in the portal).
param appInsightsName string
param location string
param tags object
@description('Address the alerts are e-mailed to. Empty: the action group has no receivers.')
param alertEmail string

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${appInsightsName}'
  // Action groups are global resources.
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'stemcellmir'
    enabled: true
    emailReceivers: empty(alertEmail)
      ? []
      : [
          {
            name: 'operator'
            emailAddress: alertEmail
            useCommonAlertSchema: true
          }
        ]
  }
}

// The last run's own nextDueAt gives the interval: no run by nextDueAt + (nextDueAt - lastRunAt) is
// "no run within twice the interval", for any schedule, with no cron parsing here. The query looks
// two days back (overrideQueryTimeRange), so a schedule stopped for longer than that is reported by
// the app itself: an invocation that finds it overdue (last 15 minutes) fires the alert too. The
// JSON is taken from the message wherever the host puts it.
var scheduleQuery = '''
let runs = traces
  | where message contains "schedule.ran"
  | extend e = parse_json(extract(@'(\{.*\})', 1, message))
  | where tostring(e.event) == "schedule.ran"
  | summarize arg_max(timestamp, e)
  | extend lastRunAt = todatetime(e.lastRunAt), nextDueAt = todatetime(e.nextDueAt)
  | where isnotnull(nextDueAt) and now() > nextDueAt + (nextDueAt - lastRunAt)
  | project timestamp, reason = "no schedule run within twice the interval";
let overdue = traces
  | where timestamp > ago(15m) and message contains "schedule.overdue"
  | where extract(@'"event":"([^"]+)"', 1, message) == "schedule.overdue"
  | summarize timestamp = max(timestamp)
  | where isnotnull(timestamp)
  | project timestamp, reason = "an invocation found the schedule overdue";
union runs, overdue
'''

resource scheduleStopped 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-schedule-stopped-${appInsightsName}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Stemcell mirror: schedule stopped'
    description: 'mirrorSchedule has not run within twice its interval, or an invocation found it overdue. Check the function app (a redeploy or restart usually revives the timer) and GET /api/mirror.'
    severity: 1
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    overrideQueryTimeRange: 'P2D'
    criteria: {
      allOf: [
        {
          query: scheduleQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    // Stateless, reminded at most once a day while the schedule stays stopped.
    autoMitigate: false
    muteActionsDuration: 'P1D'
    actions: { actionGroups: [actionGroup.id] }
  }
}

var failedJobsQuery = '''
traces
| where message contains "job.failed" or message contains "poison."
| extend event = extract(@'"event":"([^"]+)"', 1, message)
| where event in ("job.failed", "poison.no-job", "poison.bad-message")
| project timestamp, event, message
'''

resource jobFailed 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-job-failed-${appInsightsName}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Stemcell mirror: a job failed or was poisoned'
    description: 'A mirror job failed for good, or a request failed on every delivery. GET /api/mirror?status=failed shows the error code and message.'
    severity: 2
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: failedJobsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    // Each window with a failure notifies once; failures are events, not a state to resolve.
    autoMitigate: false
    actions: { actionGroups: [actionGroup.id] }
  }
}
