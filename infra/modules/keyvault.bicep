// Optional: the webhook's HMAC secret in Key Vault; the app setting is a Key Vault reference.
param name string
param location string
param tags object
@secure()
param webhookSecret string
param identityPrincipalId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
  }
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'webhook-secret'
  properties: { value: webhookSecret }
}

resource readSecret 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(secret.id, identityPrincipalId, keyVaultSecretsUser)
  scope: secret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output reference string = '@Microsoft.KeyVault(SecretUri=${secret.properties.secretUri})'
