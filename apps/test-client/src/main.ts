console.log('test-client')
