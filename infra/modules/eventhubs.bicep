// Event Hubs Standard: the hub the webhook writes to and the consumer group the transform reads.
param namespaceName string
param location string
param tags object
param eventHubName string
@minValue(1)
@maxValue(32)
param partitionCount int
param consumerGroupName string
@description('Throughput units (1 TU: 1 MB/s or 1,000 events/s in); auto-inflate up to the max.')
param throughputUnits int = 1
param maximumThroughputUnits int = 4
param workspaceId string
@description('Off the internet: public network access disabled, reached through a private endpoint.')
param vnetEnabled bool

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard', capacity: throughputUnits }
  properties: {
    disableLocalAuth: true // SAS keys off: Entra ID roles only
    minimumTlsVersion: '1.2'
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    isAutoInflateEnabled: true
    maximumThroughputUnits: maximumThroughputUnits
  }
}

// The firewall. Without a VNet the webhook (Flex, shared outbound addresses) and the operator's
// ops CLI reach the namespace over the internet, Entra ID only; with one, nothing public does.
resource networkRules 'Microsoft.EventHub/namespaces/networkRuleSets@2024-01-01' = {
  parent: namespace
  name: 'default'
  properties: {
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    defaultAction: vnetEnabled ? 'Deny' : 'Allow'
    trustedServiceAccessEnabled: false
    ipRules: []
    virtualNetworkRules: []
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount // fixed at creation on Standard: changing it recreates the hub
    retentionDescription: {
      cleanupPolicy: 'Delete'
      retentionTimeInHours: 168 // 7 days, the state retention window (SPEC 5)
    }
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: hub
  name: consumerGroupName
}

// Operational logs (namespace and hub changes), auto-inflate, private-endpoint connections.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output id string = namespace.id
output namespaceName string = namespace.name
output hubName string = hub.name
output consumerGroupName string = consumerGroup.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
