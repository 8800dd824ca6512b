// Two alerts on Application Insights: consumer lag and error rate.
//
// Lag: Event Hubs has no consumer-lag metric for AMQP consumers, and incoming minus outgoing
// messages is not a backlog (outgoing counts redeliveries and every consumer group). The app's
// telemetry probe measures it exactly, every minute (last enqueued sequence number minus the
// host's checkpoint, per partition) and emits `consumer_lag_events_total`: a metric alert on
// that custom metric. Validation is skipped because the metric exists only once emitted.
//
// Error rate: a metric alert cannot divide one metric by another, so this is a log alert on
// the `requests` table: failed invocations (an exception, or an HTTP 5xx) over all requests.
param name string
param location string
param tags object
param applicationInsightsId string
@description('Events behind, summed over partitions, sustained for the whole window.')
param lagThreshold int = 10000
@description('Per cent of failed requests (a string: Bicep has no decimal literals).')
param errorRatePercent string = '0.1'
@description('Below this many requests in the window, no error-rate verdict.')
param errorRateMinRequests int = 100
@description('E-mail for notifications (empty: alerts fire, nobody is mailed).')
param alertEmail string = ''

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: '${name}-oncall'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('gen-oncall', 12)
    enabled: true
    emailReceivers: [
      { name: 'oncall', emailAddress: alertEmail, useCommonAlertSchema: true }
    ]
  }
}

var actionGroups = empty(alertEmail) ? [] : [actionGroup.id]

resource lagAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${name}-consumer-lag'
  location: 'global'
  tags: tags
  properties: {
    description: 'The transform is more than ${lagThreshold} events behind the hub (all partitions) for 5 minutes. Runbook: docs/operations.md, "Lag growing".'
    severity: 2
    enabled: true
    scopes: [applicationInsightsId]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'consumer-lag'
          metricNamespace: 'azure.applicationinsights'
          metricName: 'consumer_lag_events_total'
          operator: 'GreaterThan'
          threshold: lagThreshold
          timeAggregation: 'Minimum'
          skipMetricValidation: true
        }
      ]
    }
    actions: [for group in actionGroups: { actionGroupId: group }]
  }
}

resource errorRateAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${name}-error-rate'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${name}: error rate above ${errorRatePercent} %'
    description: 'Failed requests (exceptions or HTTP 5xx, ingest and transform) above ${errorRatePercent} % of all requests over 15 minutes. Runbook: docs/operations.md.'
    severity: 1
    enabled: true
    scopes: [applicationInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'requests | summarize total = count(), failed = countif(success == false or toint(resultCode) >= 500) | where total >= ${errorRateMinRequests} | extend error_rate_percent = 100.0 * failed / total'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'error_rate_percent'
          operator: 'GreaterThan'
          threshold: json(errorRatePercent)
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: actionGroups }
  }
}

output lagAlertName string = lagAlert.name
output errorRateAlertName string = errorRateAlert.name
