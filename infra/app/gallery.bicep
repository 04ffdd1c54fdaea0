// The Azure Compute Gallery the mirror publishes into. Image definitions and versions are created by
// the app at run time (named the way the BOSH Azure CPI names them), not here.
param name string
param location string
param tags object

resource gallery 'Microsoft.Compute/galleries@2024-03-03' = {
  name: name
  location: location
  tags: tags
  properties: {
    description: 'BOSH stemcells mirrored from bosh.io'
  }
}

output name string = gallery.name
output id string = gallery.id
