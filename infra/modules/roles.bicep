// Least-privilege role assignments: the app's identity, and optionally the operator running
// azd / the ops CLI. Each is scoped to the one resource it is for.
param identityPrincipalId string
param eventHubsNamespaceName string
param eventHubName string
param hostStorageName string
param stateStorageName string
param applicationInsightsName string
@description('The operator (azd sets the signed-in user); empty: no operator roles.')
param operatorPrincipalId string = ''
@allowed(['User', 'ServicePrincipal', 'Group'])
param operatorPrincipalType string = 'User'

var roles = {
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975'
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubsNamespaceName
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = {
  parent: namespace
  name: eventHubName
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

resource stateStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: stateStorageName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// ---- the app's identity
// Ingest sends; the trigger receives (and reads partition properties for scaling).
resource appSendsToHub 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hub.id, identityPrincipalId, roles.eventHubsDataSender)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appReceivesFromHub 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hub.id, identityPrincipalId, roles.eventHubsDataReceiver)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The Functions runtime on its own storage: deployment package, checkpoints, leases (blob),
// timer and scale bookkeeping (queue, table).
resource appOwnsHostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, identityPrincipalId, roles.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appUsesHostTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, identityPrincipalId, roles.storageTableDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appUsesHostQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, identityPrincipalId, roles.storageQueueDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The app's data: records, dead letters, spilled state (blob); state and due index (table).
resource appWritesStateBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stateStorage.id, identityPrincipalId, roles.storageBlobDataContributor)
  scope: stateStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appWritesStateTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stateStorage.id, identityPrincipalId, roles.storageTableDataContributor)
  scope: stateStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry with Entra ID auth (local auth is off on the component).
resource appPublishesMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- the operator (ops CLI: lag, checkpoint reset, dead-letter replay, state inspect, erase)
var operator = !empty(operatorPrincipalId)

resource operatorReceives 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (operator) {
  name: guid(hub.id, operatorPrincipalId, roles.eventHubsDataReceiver)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

resource operatorSends 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (operator) {
  name: guid(hub.id, operatorPrincipalId, roles.eventHubsDataSender)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

resource operatorCheckpoints 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (operator) {
  name: guid(hostStorage.id, operatorPrincipalId, roles.storageBlobDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

resource operatorStateBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (operator) {
  name: guid(stateStorage.id, operatorPrincipalId, roles.storageBlobDataContributor)
  scope: stateStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// Contributor, not Reader: `ops erase` deletes a conversation's state and due-index rows.
resource operatorState 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (operator) {
  name: guid(stateStorage.id, operatorPrincipalId, roles.storageTableDataContributor)
  scope: stateStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}
