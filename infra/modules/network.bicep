// Private networking (vnetEnabled): a VNet whose one subnet carries the function app's outbound
// traffic (VNet integration; Flex Consumption needs it delegated to Microsoft.App/environments)
// and whose other holds the private endpoints of storage, Event Hubs and Key Vault; the private
// DNS zones that make the services' usual names resolve to those endpoints inside the VNet.
// Inbound to the app is unchanged: the webhook stays on its public HTTPS endpoint.
param name string
param location string
param tags object
param workspaceId string
@description('The VNet\'s address space.')
param addressPrefix string = '10.0.0.0/16'
param appSubnetName string
@description('The app\'s integration subnet (its size bounds the scale-out: a /24 leaves room).')
param appSubnetPrefix string = '10.0.0.0/24'
param privateEndpointSubnetName string
@description('The private endpoints\' subnet.')
param privateEndpointSubnetPrefix string = '10.0.1.0/24'
@description('The endpoints, one per service and group: [{ name, type, group }] in this resource group.')
param privateLinks array

// Storage zones follow the cloud's suffix; the Event Hubs and Key Vault zones are the documented
// privatelink names of Azure public cloud.
var zoneGroups = ['blob', 'queue', 'table', 'namespace', 'vault']
var zoneNames = {
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
  table: 'privatelink.table.${environment().suffixes.storage}'
  namespace: 'privatelink.servicebus.windows.net'
  vault: 'privatelink.vaultcore.azure.net'
}

// No custom rules: the defaults deny inbound from the internet and allow traffic inside the VNet,
// which is all either subnet needs (private endpoints answer inside the VNet only).
resource nsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${name}'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: [addressPrefix] }
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
          delegations: [
            {
              name: 'flex-consumption'
              properties: { serviceName: 'Microsoft.App/environments' }
            }
          ]
        }
      }
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [
  for group in zoneGroups: {
    name: zoneNames[group]
    location: 'global'
    tags: tags
  }
]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [
  for (group, index) in zoneGroups: {
    parent: zones[index]
    name: '${name}-link'
    location: 'global'
    tags: tags
    properties: {
      virtualNetwork: { id: vnet.id }
      registrationEnabled: false
    }
  }
]

resource endpoints 'Microsoft.Network/privateEndpoints@2024-05-01' = [
  for link in privateLinks: {
    name: 'pe-${link.name}-${link.group}'
    location: location
    tags: tags
    properties: {
      subnet: { id: resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, privateEndpointSubnetName) }
      privateLinkServiceConnections: [
        {
          name: '${link.name}-${link.group}'
          properties: {
            privateLinkServiceId: resourceId(link.type, link.name)
            groupIds: [link.group]
          }
        }
      ]
    }
  }
]

// The endpoint's A record in its group's zone.
resource endpointRecords 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [
  for (link, index) in privateLinks: {
    parent: endpoints[index]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: link.group
          properties: { privateDnsZoneId: resourceId('Microsoft.Network/privateDnsZones', zoneNames[link.group]) }
        }
      ]
    }
    dependsOn: [zones]
  }
]

resource nsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: nsg
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'NetworkSecurityGroupEvent', enabled: true }
      { category: 'NetworkSecurityGroupRuleCounter', enabled: true }
    ]
  }
}

resource vnetDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vnet
  properties: {
    workspaceId: workspaceId
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output id string = vnet.id
