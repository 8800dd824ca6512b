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

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard', capacity: throughputUnits }
  properties: {
    disableLocalAuth: true // SAS keys off: Entra ID roles only
    minimumTlsVersion: '1.2'
    isAutoInflateEnabled: true
    maximumThroughputUnits: maximumThroughputUnits
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

output namespaceName string = namespace.name
output hubName string = hub.name
output consumerGroupName string = consumerGroup.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
