// AcrPull on the registry that holds the auditor image: the job pulls with its identity, no
// registry password (CAJ-002).
targetScope = 'resourceGroup'

@description('Name of the existing registry (in this module\'s resource group).')
param registryName string

@description('Principal (object) id of the job identity.')
param principalId string

@description('GUID of the built-in role to grant (AcrPull).')
param roleDefinitionGuid string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, principalId, roleDefinitionGuid)
  scope: registry
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
  }
}
